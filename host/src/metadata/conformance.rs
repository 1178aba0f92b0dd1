//! The one test suite every [`MetadataStore`] passes (memory, redb, etcd),
//! run on a fresh store. Revisions only grow: etcd's skip the numbers other
//! keys' writes take.

use super::{MetadataStore, StoreError, Write};
use std::time::Duration;

fn put(p: &str, v: &str) -> Write {
    Write::Put {
        path: p.into(),
        value: v.into(),
    }
}

fn delete(p: &str) -> Write {
    Write::DeleteTree { path: p.into() }
}

/// Applies, snapshots and watches as the trait promises.
pub(crate) async fn metadata_store(store: &dyn MetadataStore) {
    // Batches are atomic and each bumps the one revision.
    assert_eq!(store.snapshot("/").await.unwrap().revision(), 0, "a fresh store");
    assert_eq!(store.revision().await.unwrap(), 0);
    let r1 = store
        .apply(&[put("/clusters/a/env/x", "1"), put("/clusters/b/env/x", "2")])
        .await
        .unwrap();
    assert!(r1 >= 1, "{r1}");
    let err = store
        .apply(&[put("/clusters/a/env/y", "3"), put("/clusters/a/env/x/z", "4")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeafConflict { .. }), "{err}");
    assert!(matches!(
        store.apply(&[put("/clusters/a/../b", "x")]).await,
        Err(StoreError::Path(_))
    ));
    assert!(matches!(
        store.apply(&[put("/clusters/a/env", "leaf")]).await,
        Err(StoreError::LeafConflict { .. })
    ));
    let a = store.snapshot("/clusters/a").await.unwrap();
    assert_eq!(a.revision(), r1, "refused batches change nothing");
    assert_eq!(store.revision().await.unwrap(), r1, "the revision is the last commit's");
    assert_eq!(a.get("/clusters/a/env/y"), None);
    assert_eq!(a.get("/clusters/a/env/x"), Some("1"));
    assert_eq!(a.get("/clusters/b/env/x"), None, "a snapshot holds only its prefix");
    assert_eq!(
        store.snapshot("/clusters/a/").await.unwrap(),
        a,
        "a trailing / is the same prefix"
    );

    // Watching: history from a revision, only what touches the prefix, then live changes.
    let r2 = store
        .apply(&[
            put("/clusters/a/hosts/n/ip", "10.0.0.1"),
            put("/clusters/b/hosts/m/ip", "x"),
        ])
        .await
        .unwrap();
    let r3 = store.apply(&[delete("/clusters")]).await.unwrap();
    assert!(r1 < r2 && r2 < r3, "{r1} {r2} {r3}");
    assert!(
        store
            .snapshot("/clusters")
            .await
            .unwrap()
            .under("/clusters")
            .next()
            .is_none()
    );
    let mut watch = store.watch("/clusters/a", r1).await.unwrap();
    let first = watch.next().await.unwrap();
    assert_eq!(
        (first.revision, first.writes),
        (r1, vec![put("/clusters/a/env/x", "1")])
    );
    let second = watch.next().await.unwrap();
    assert_eq!(
        (second.revision, second.writes),
        (r2, vec![put("/clusters/a/hosts/n/ip", "10.0.0.1")])
    );
    let third = watch.next().await.unwrap();
    assert_eq!(
        (third.revision, third.writes),
        (r3, vec![delete("/clusters")]),
        "deleting an ancestor deletes the watched prefix"
    );
    let pending = tokio::time::timeout(Duration::from_millis(100), watch.next()).await;
    assert!(pending.is_err(), "nothing more has happened yet");
    store.apply(&[put("/clusters/b/env/x", "not a's")]).await.unwrap();
    let r5 = store.apply(&[put("/clusters/a/env/x", "live")]).await.unwrap();
    let live = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a live change arrives")
        .unwrap();
    assert_eq!(
        (live.revision, live.writes),
        (r5, vec![put("/clusters/a/env/x", "live")])
    );
    // A watch on a quiet prefix keeps up with the revisions made elsewhere.
    let mut quiet = store.watch("/clusters/quiet", r5).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), quiet.next())
            .await
            .is_err()
    );
    let r6 = store.apply(&[put("/clusters/quiet/env/x", "at last")]).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(5), quiet.next())
        .await
        .expect("it arrives")
        .unwrap();
    assert_eq!(change.revision, r6);
    // A watch from a revision not made yet waits for it.
    let mut later = store.watch("/clusters/a", r5 + 1).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), later.next())
            .await
            .is_err()
    );
    assert!(matches!(store.watch("relative", 1).await, Err(StoreError::Path(_))));
}
