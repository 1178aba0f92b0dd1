//! The web console: served without a token with safe headers; and, in a
//! real headless Chromium driven over WebDriver, a tenant logs in with its
//! token and sees its cluster, the cluster's nodes with their health and
//! monitor chart, and the create operation's hook timeline (checked in the DOM and in a screenshot),
//! while a wrong token is refused and another tenant sees nothing of it.

mod common;

use common::server::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `ok` bars' fill in style.css, looked for in the screenshot.
const OK_COLOUR: [u8; 3] = [0x00, 0xb0, 0x60];
/// The browser window's inside, and so the screenshot.
const WINDOW: (u32, u32) = (1280, 900);
/// A name that would be markup if the console used innerHTML.
const NAME: &str = "shop <img src=x onerror=alert(1)> & \"1\"";

/// One GET; the status, the headers (names in lower case) and the body.
fn get(addr: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_console_is_served_without_a_token_with_safe_headers() {
    let server = Server::start(tempfile::tempdir().unwrap());
    let (status, headers, _) = get(&server.addr, "/");
    assert_eq!((status, header(&headers, "location")), (303, Some("/console/")));
    for (path, kind) in [
        ("/console/", "text/html"),
        ("/console/index.html", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        let (status, headers, body) = get(&server.addr, path);
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&headers, "content-type").is_some_and(|t| t.starts_with(kind)),
            "{path}: {headers:?}"
        );
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some("default-src 'self'"),
            "{path}"
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"), "{path}");
        assert!(!body.is_empty());
    }
    // No inline script (the policy would block it), and no HTML built from data.
    let (_, _, page) = get(&server.addr, "/console/");
    assert!(page.contains("<script src=\"/console/app.js\"") && !page.contains("<script>"));
    let (_, _, script) = get(&server.addr, "/console/app.js");
    assert!(!script.contains("innerHTML") && !script.contains("outerHTML"));
    assert_eq!(get(&server.addr, "/console/secrets").0, 404);
    // The API still wants a token.
    assert_eq!(get(&server.addr, "/api/v1/clusters").0, 401);
}

/// chromedriver on a free loopback port, in its own process group: dropped,
/// it is asked to shut down and then killed with its browsers, even when
/// the test failed.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): apt-get install -y chromium chromium-driver"));
        let driver = Driver { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.write_all(b"GET /shutdown HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            let _ = s.read_to_end(&mut Vec::new());
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its group: chromedriver and the browsers it started. (kill(2) takes no pointer.)
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs chromium and chromedriver (apt-get install chromium chromium-driver); .ci/run runs it"]
fn the_console_shows_a_tenants_clusters_nodes_and_hook_timeline() {
    let started = Instant::now();
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--health-interval", "200ms"]);
    let a = server.tenant("acme", &[]);
    let b = server.tenant("globex", &[]);
    // Three nodes, one of each role, checked and monitored.
    let (status, doc) = server.upload(&a, "rec", |spec| {
        spec["nodes"][0]["count"] = json!(1);
        spec["nodes"][2]["count"] = json!(1);
        spec["health_check"] = json!({"enable": true, "healthy_threshold": 2});
        spec["monitor"] = json!({"enable": true, "items": {"load": {"unit": "count"}}});
    });
    assert_eq!(status, 201, "{doc}");
    let request = json!({"kind": "create-cluster", "app": {"app": "rec", "version": "1.0"}, "name": NAME});
    let op = server.run(&a, request);
    assert_eq!(op["status"], "succeeded", "{op}");
    let cluster = op["cluster_id"].as_str().unwrap().to_string();
    let op_id = op["id"].as_str().unwrap().to_string();
    let events = server.ok("GET", &format!("/api/v1/operations/{op_id}/events"), &a, None);
    let events = events.as_array().unwrap().len();
    assert!(events >= 6, "{events} events");
    // The health loop has marked every node and sampled each twice.
    let healthy = || {
        let doc = server.ok("GET", &format!("/api/v1/clusters/{cluster}"), &a, None);
        let nodes = doc["health"]["nodes"].as_object().cloned().unwrap_or_default();
        nodes.len() == 3 && nodes.values().all(|h| h["status"] == "healthy")
    };
    let sampled = || {
        let doc = server.ok("GET", &format!("/api/v1/clusters/{cluster}/monitor"), &a, None);
        let nodes = doc["nodes"].as_object().cloned().unwrap_or_default();
        nodes.len() == 3 && nodes.values().all(|p| p.as_array().is_some_and(|p| p.len() >= 2))
    };
    let waited = Instant::now();
    while !(healthy() && sampled()) {
        assert!(waited.elapsed() < WAIT, "the nodes were never all healthy and sampled");
        std::thread::sleep(Duration::from_millis(100));
    }

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let site = Site {
        url: format!("http://{}/", server.addr),
        a,
        b,
        cluster,
        op: op_id,
        events,
    };
    runtime.block_on(browse(driver.port, &site));
    drop(driver);
    eprintln!("the browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// What the browser is to find.
struct Site {
    url: String,
    a: String,
    b: String,
    cluster: String,
    op: String,
    events: usize,
}

async fn browse(port: u16, site: &Site) {
    let mut caps = serde_json::Map::new();
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
    ];
    caps.insert("goog:chromeOptions".into(), json!({"args": args}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver starts a browser");
    // The window's frame takes room even headless: grow it so that the page sees WINDOW.
    let frame = client
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    let frame: [u32; 2] = serde_json::from_value(frame).unwrap();
    client
        .set_window_size(WINDOW.0 + frame[0], WINDOW.1 + frame[1])
        .await
        .unwrap();
    // Closed on success; on a failure the driver's guard ends the browser.
    check(&client, site).await;
    client.close().await.expect("the session closes");
}

const WAIT: Duration = Duration::from_secs(20);

async fn check(client: &Client, site: &Site) {
    client.goto(&site.url).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/"));
    log_in(client, &site.a).await;

    // The cluster row: its name (as text, not markup) and status. The lists
    // are redrawn every 5 s: read them in one script, click by selector.
    let row = format!("#cluster-rows tr[data-id='{}']", site.cluster);
    eventually(|| async { (texts(client, &row).await.len() == 1).then_some(()) }).await;
    assert_eq!(texts(client, "#cluster-rows tr").await.len(), 1);
    assert_eq!(texts(client, &format!("{row} td[data-col='name']")).await, [NAME]);
    assert_eq!(texts(client, &format!("{row} td[data-col='status']")).await, ["active"]);

    // Its nodes, with their roles and health.
    click(client, &row).await;
    let mut roles = eventually(|| async {
        let roles = texts(client, "#node-rows td[data-col='role']").await;
        (roles.len() == 3).then_some(roles)
    })
    .await;
    roles.sort();
    assert_eq!(roles, ["cache", "db", "web"]);
    assert_eq!(texts(client, "#node-rows td[data-col='health']").await, ["healthy"; 3]);
    // The monitor: a chart of `load`, a line per node.
    let lines = attrs(client, "#monitor figure[data-item='load'] polyline", "data-node").await;
    assert_eq!(lines.len(), 3, "{lines:?}");

    // The create operation's timeline: a bar per hook invocation, all ok.
    let op_row = format!("#op-rows tr[data-id='{}']", site.op);
    assert_eq!(
        texts(client, &format!("{op_row} td[data-col='kind']")).await,
        ["create-cluster"]
    );
    assert_eq!(
        texts(client, &format!("{op_row} td[data-col='status']")).await,
        ["succeeded"]
    );
    click(client, &op_row).await;
    let outcomes = eventually(|| async {
        let outcomes = attrs(client, "#timeline rect[data-outcome]", "data-outcome").await;
        (outcomes.len() == site.events).then_some(outcomes)
    })
    .await;
    assert!(outcomes.iter().all(|o| o == "ok"), "{outcomes:?}");
    let tooltip = client
        .execute(
            "return document.querySelector('#timeline rect title').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        tooltip.as_str().is_some_and(|t| t.contains("attempt 1: ok ")),
        "{tooltip}"
    );
    assert!(!client.find_all(Locator::Css("#journal li")).await.unwrap().is_empty());

    screenshot(client).await;

    // Log out; a wrong token is refused with a message and the form again.
    click(client, "#logout").await;
    log_in(client, "hh_not_a_token").await;
    let error = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("login-error"))
        .await
        .unwrap();
    eventually(|| async { error.is_displayed().await.unwrap().then_some(()) }).await;
    assert!(error.text().await.unwrap().contains("401"));
    assert!(
        client
            .find(Locator::Id("token"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    assert!(
        !client
            .find(Locator::Id("main"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // Another tenant sees none of acme's.
    log_in(client, &site.b).await;
    let empty = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("clusters-empty"))
        .await
        .unwrap();
    eventually(|| async { empty.is_displayed().await.unwrap().then_some(()) }).await;
    assert_eq!(texts(client, "#tenant").await, ["tenant globex"]);
    let page = client.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(
        !page.contains(&site.cluster) && !page.contains(&site.op) && !page.contains("shop"),
        "{page}"
    );
}

async fn log_in(client: &Client, token: &str) {
    let input = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("token"))
        .await
        .unwrap();
    eventually(|| async { input.is_displayed().await.unwrap().then_some(()) }).await;
    input.send_keys(token).await.unwrap();
    client
        .find(Locator::Css("#login-form button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of every element `css` selects, read at one moment.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    attrs(client, css, "").await
}

/// An attribute (the text for "") of every element `css` selects, read at one moment.
async fn attrs(client: &Client, css: &str, name: &str) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0]), \
                  (e) => arguments[1] ? e.getAttribute(arguments[1]) : e.textContent)";
    let found = client.execute(script, vec![json!(css), json!(name)]).await.unwrap();
    serde_json::from_value(found).unwrap()
}

/// Clicks what `css` selects, again if a redraw replaced it meanwhile.
async fn click(client: &Client, css: &str) {
    eventually(|| async {
        let element = client.find(Locator::Css(css)).await.ok()?;
        element.click().await.ok()
    })
    .await;
}

/// Polls until `probe` gives something, at most [`WAIT`].
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(mut probe: impl FnMut() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < WAIT, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The window as a PNG: its size, and the `ok` colour within the timeline.
async fn screenshot(client: &Client) {
    let at = client
        .execute(
            "const t = document.getElementById('timeline'); t.scrollIntoView({block: 'center'});
             const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];",
            vec![],
        )
        .await
        .unwrap();
    let at: Vec<f64> = serde_json::from_value::<Vec<Value>>(at)
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let png = client.screenshot().await.unwrap();
    let path = hookhost_test_support::repo("target/console.png");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();

    let mut reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), WINDOW, "the screenshot is the window");
    let channels = frame.color_type.samples();
    assert!(channels >= 3 && frame.bit_depth == png::BitDepth::Eight, "{frame:?}");
    let (x0, y0) = (at[0].max(0.0) as u32, at[1].max(0.0) as u32);
    let (x1, y1) = ((at[2] as u32).min(frame.width), (at[3] as u32).min(frame.height));
    let mut ok = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let i = (y * frame.width + x) as usize * channels;
            let close = (0..3).all(|c| pixels[i + c].abs_diff(OK_COLOUR[c]) <= 8);
            ok += close as usize;
        }
    }
    assert!(
        ok >= 100,
        "only {ok} pixels of the ok colour in the timeline at {at:?} (see {})",
        path.display()
    );
}
