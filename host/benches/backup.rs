//! Backups of one node's volume: a full point, an incremental point after
//! 1% of the files changed, and a restore (every checksum checked), beside
//! `cp -a` of the same tree and `sync -f`, the baseline measured in the same
//! run (the same bytes copied and flushed, no checksums, no listing). Ratios to it are printed
//! beside the figures, since machines differ.
//!
//! `cargo bench --bench backup` (release). The last line is:
//! `backup: full_ms=<ms> incremental_ms=<ms> restore_ms=<ms> cp_ms=<ms>`

use hookhost::backups::tree::{restore, snapshot};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Files in the volume, and bytes in each.
const FILES: usize = 2_000;
const BYTES: usize = 16 << 10;
/// Runs of each measurement; the median is reported.
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Flushes what earlier steps left dirty, so each figure pays only its own writes.
fn settle() {
    let status = Command::new("sync").status().expect("sync runs");
    assert!(status.success());
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The bytes of file `i`.
fn content(i: usize) -> Vec<u8> {
    (0..BYTES).map(|b| (b.wrapping_mul(31) ^ i) as u8).collect()
}

/// A volume of `FILES` files in 20 directories, each with its own content.
fn volume(root: &Path) {
    for i in 0..FILES {
        let dir = root.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(format!("f{i:05}")), content(i)).expect("file");
    }
}

fn main() {
    let work = tempfile::tempdir().expect("tempdir");
    let vol = work.path().join("volume");
    volume(&vol);
    let (mut full, mut incremental, mut restored, mut cp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let base = work.path().join(format!("full{run}"));
        settle();
        let start = Instant::now();
        let (entries, copied) = snapshot(&vol, &base, None).expect("full point");
        full.push(ms(start));
        assert_eq!(copied.bytes, (FILES * BYTES) as u64);
        assert_eq!(copied.stored, copied.bytes, "a full point stores every byte");

        // 1% of the files change; the next point stores only them.
        for i in (0..FILES).step_by(100) {
            let file = vol.join(format!("d{:02}/f{i:05}", i % 20));
            std::fs::write(&file, format!("changed in run {run}")).expect("change");
        }
        let next = work.path().join(format!("inc{run}"));
        settle();
        let start = Instant::now();
        let (later, copied) = snapshot(&vol, &next, Some((&base, &entries))).expect("incremental point");
        incremental.push(ms(start));
        assert!(copied.stored < (FILES * BYTES / 50) as u64, "{copied:?}");

        let back = work.path().join(format!("back{run}"));
        settle();
        let start = Instant::now();
        restore(&next, &back, &later).expect("restore");
        restored.push(ms(start));

        let copy = work.path().join(format!("cp{run}"));
        settle();
        let start = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(r#"cp -a "$0" "$1" && sync -f "$1""#)
            .arg(&vol)
            .arg(&copy)
            .status()
            .expect("cp runs");
        cp.push(ms(start));
        assert!(status.success());
        // The changed files get their own content back for the next run.
        for i in (0..FILES).step_by(100) {
            let file = vol.join(format!("d{:02}/f{i:05}", i % 20));
            std::fs::write(&file, content(i)).expect("reset");
        }
        for dir in [base, next, back, copy] {
            std::fs::remove_dir_all(dir).expect("clean");
        }
    }
    let cp = median(cp);
    println!("baseline: cp -a of {FILES} files of {} KiB: {cp:.1} ms", BYTES >> 10);
    let (full, incremental, restored) = (median(full), median(incremental), median(restored));
    for (what, v) in [
        ("full point", full),
        ("incremental point (1% changed)", incremental),
        ("restore, checksums checked", restored),
    ] {
        println!("{what:<32} {v:>8.1} ms   {:>5.2}× cp -a", v / cp);
    }
    println!("backup: full_ms={full:.1} incremental_ms={incremental:.1} restore_ms={restored:.1} cp_ms={cp:.1}");
}
