//! A small blocking HTTP/1.1 client for the CLI's calls to a running `weir up` (`weir query`,
//! `weir status`): one request per connection, JSON in and out.

use anyhow::{Context, bail};
use clap::Args;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;

/// Which pipeline a command looks at: its files (config, data directory) and its running server.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline definition (weir.toml), for the data directory and the API address.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where data lives [default: ./weir-data, or data_dir from the config].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A running weir's API [default: the config's listen address].
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token for the API [default: the first of the config's server.auth_tokens].
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl PipelineArgs {
    pub fn read_config(&self) -> anyhow::Result<Config> {
        crate::up::read_config(self.config.as_deref(), self.data_dir.as_deref())
    }

    /// The API of the `weir up` that `config` describes (or `--url`).
    pub fn api(&self, config: &Config) -> anyhow::Result<Api> {
        let url = match &self.url {
            Some(url) => url.clone(),
            None => format!("http://{}", config.listen),
        };
        Api::new(
            &url,
            self.token
                .clone()
                .or_else(|| config.server.auth_tokens.first().cloned()),
        )
    }
}

/// A running `weir up`'s API: `http://host:port` and its bearer token, if any.
#[derive(Debug, Clone)]
pub struct Api {
    host: String,
    addr: SocketAddr,
    token: Option<String>,
}

/// How long a call may take (a warehouse query may scan a lot).
const TIMEOUT: Duration = Duration::from_secs(300);

impl Api {
    /// `url` as `http://host:port` (no path).
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Api> {
        let host = url
            .strip_prefix("http://")
            .with_context(|| format!("{url:?}: the API URL must start with http://"))?
            .trim_end_matches('/')
            .to_owned();
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        Ok(Api { host, addr, token })
    }

    /// Whether something accepts connections there.
    pub fn is_up(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok()
    }

    /// Sends one request; returns the status and the body.
    pub fn call(&self, method: &str, path: &str, json_body: Option<&[u8]>) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to http://{}", self.host))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.host
        );
        if let Some(token) = &self.token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = json_body.unwrap_or_default();
        if json_body.is_some() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .with_context(|| format!("reading the answer of http://{}{path}", self.host))?;
        parse_response(&response).with_context(|| format!("answer of http://{}{path}", self.host))
    }
}

/// Status and body of a complete response (Content-Length or chunked).
fn parse_response(bytes: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(bytes)? else {
        bail!("the response ended inside its headers");
    };
    let status = response.code.unwrap_or(0);
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding") && String::from_utf8_lossy(h.value).contains("chunked")
    });
    let rest = &bytes[head_len..];
    if !chunked {
        return Ok((status, rest.to_vec()));
    }
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Ok(httparse::Status::Complete((consumed, size))) = httparse::parse_chunk_size(&rest[at..]) else {
            bail!("a malformed chunk");
        };
        at += consumed;
        if size == 0 {
            return Ok((status, body));
        }
        let end = at + size as usize;
        if end > rest.len() {
            bail!("the response ended inside a chunk");
        }
        body.extend_from_slice(&rest[at..end]);
        at = end + 2;
    }
}

/// The error message of an API error body (`{"error":{"code","message"}}`), or the body itself.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = &v["error"];
            Some(format!("{} ({})", e["message"].as_str()?, e["code"].as_str()?))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
