//! The CLI's client of a `hookhost serve` (`--server`, `--token`): JSON over
//! HTTP/1.1, each error reply turned into the error the embedded mode says.

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long one request may take (an upload compiles its components).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A server and the tenant's token.
#[derive(Clone)]
pub struct Remote {
    base: String,
    token: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Remote {
    /// A client of `url` (`http://host:port`) with `token`.
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Remote> {
        let base = url.trim_end_matches('/');
        let Some(authority) = base.strip_prefix("http://") else {
            bail!(
                "--server {url:?}: give an http:// address (e.g. http://127.0.0.1:7411); put TLS in front of it with a proxy"
            );
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            bail!("--server {url:?}: give http://host:port, nothing after the port");
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            bail!("--server needs a tenant's token: --token or HOOKHOST_TOKEN (`hookhost tenant add` prints one)");
        };
        Ok(Remote {
            base: base.to_string(),
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// `GET path` as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("GET", path, None).await
    }

    /// `POST path` with a JSON body, as `T`.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> anyhow::Result<T> {
        self.call("POST", path, Some(body.to_string().into_bytes())).await
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let request = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .with_context(|| format!("bad request to {url}"))?;
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, bytes))
        })
        .await;
        let (status, bytes) = match sent {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(anyhow!("cannot reach the server at {}: {}", self.base, cause(&*e))),
            Err(_) => bail!(
                "the server at {} did not answer {method} {path} within {REQUEST_TIMEOUT:?}",
                self.base
            ),
        };
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let error = doc["error"].as_str().unwrap_or("no reason given");
            return Err(match (status.as_u16(), doc["at"].as_str()) {
                (401, _) => anyhow!("the server refused the token (401): check --token or HOOKHOST_TOKEN"),
                (_, Some(at)) => anyhow!("{at}: {error}"),
                (code @ (429 | 413 | 500..), None) => anyhow!("the server answered {code}: {error}"),
                _ => anyhow!("{error}"),
            });
        }
        serde_json::from_value(doc)
            .with_context(|| format!("the server's reply to {method} {path} is not what this CLI reads"))
    }

    /// Uploads the app of a spec file (its components by file name); returns
    /// the server's reply (`app`, `version`, `digest`, `new`).
    pub async fn upload(&self, file: &Path, app: &str, version: Option<&str>) -> anyhow::Result<Value> {
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if dir.join(hookhost::engine::PAYLOAD_DIR).exists() {
            bail!(
                "{}: an app with a {} directory cannot be uploaded to a server yet",
                file.display(),
                hookhost::engine::PAYLOAD_DIR
            );
        }
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut spec: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        let mut components = BTreeMap::new();
        let roles = spec["nodes"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("{}: nodes: a list of roles is needed", file.display()))?;
        for (i, role) in roles.iter_mut().enumerate() {
            let plugin = role["plugin"]
                .as_str()
                .ok_or_else(|| anyhow!("{}: nodes[{i}].plugin: missing", file.display()))?;
            let path = dir.join(plugin);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| anyhow!("{}: nodes[{i}].plugin: {plugin:?} names no file", file.display()))?;
            let bytes = std::fs::read(&path)
                .with_context(|| format!("{}: nodes[{i}].plugin: cannot read {}", file.display(), path.display()))?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            if components.get(&name).is_some_and(|other| *other != encoded) {
                bail!(
                    "{}: nodes[{i}].plugin: two different components are named {name}; rename one",
                    file.display()
                );
            }
            components.insert(name.clone(), encoded);
            role["plugin"] = json!(name);
        }
        let mut body = json!({"app": app, "spec": spec, "components": components});
        if let Some(version) = version {
            body["version"] = json!(version);
        }
        self.post("/api/v1/apps", &body).await
    }
}

/// The innermost cause of a connection failure (hyper's outer ones say little).
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}
