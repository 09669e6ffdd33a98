//! A minimal HTTP/1.1 client connection: one request at a time on a keep-alive TCP connection. Written
//! on raw sockets rather than on hyper's client so a request costs one write, a read or two and a header
//! parse, with no task hand-off: the sender has to outrun the server it measures.

use bytes::BytesMut;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

/// Bodies up to this size are copied behind the head and sent in one `write`; larger ones go out with
/// `writev` straight from where they are.
const COPY_LIMIT: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

pub struct Connection {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    chunked_body: Vec<u8>,
}

pub struct Response<'a> {
    pub status: u16,
    /// `Retry-After` in seconds (the HTTP-date form is not used by weir and is ignored).
    pub retry_after: Option<Duration>,
    /// False when the server closes the connection after this response.
    pub keep_alive: bool,
    pub body: &'a [u8],
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection before answering",
    )
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Connection {
    pub async fn connect(addrs: &[SocketAddr]) -> io::Result<Connection> {
        let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(Connection {
                        stream,
                        read: BytesMut::with_capacity(16 * 1024),
                        write: Vec::with_capacity(COPY_LIMIT + 1024),
                        chunked_body: Vec::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends `head` (request line and headers, blank line included) and `body`, and reads the response.
    pub async fn exchange(&mut self, head: &[u8], body: &[u8]) -> io::Result<Response<'_>> {
        self.send(head, body).await?;
        self.receive().await
    }

    async fn send(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        if body.len() <= COPY_LIMIT {
            self.write.clear();
            self.write.extend_from_slice(head);
            self.write.extend_from_slice(body);
            return self.stream.write_all(&self.write).await;
        }
        let (mut head, mut body) = (head, body);
        while !head.is_empty() {
            let n = self
                .stream
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            if n < head.len() {
                head = &head[n..];
            } else {
                body = &body[n - head.len()..];
                head = &[];
            }
        }
        self.stream.write_all(body).await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.read.capacity() - self.read.len() < 4096 {
            self.read.reserve(16 * 1024);
        }
        self.stream.read_buf(&mut self.read).await
    }

    async fn receive(&mut self) -> io::Result<Response<'_>> {
        self.read.clear();
        let (status, retry_after, mut keep_alive, framing, head_len) = loop {
            if self.fill().await? == 0 {
                return Err(closed());
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let head_len = match response.parse(&self.read) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => continue,
                Err(e) => return Err(invalid(format!("malformed HTTP response: {e}"))),
            };
            let status = response.code.ok_or_else(|| invalid("no status code"))?;
            if (100..200).contains(&status) {
                // An interim response (100 Continue): the real one follows.
                let _ = self.read.split_to(head_len);
                continue;
            }
            let mut keep_alive = response.version == Some(1);
            let mut framing = Framing::UntilClose;
            let mut retry_after = None;
            for header in response.headers.iter() {
                let value = std::str::from_utf8(header.value).unwrap_or("").trim();
                if header.name.eq_ignore_ascii_case("content-length") {
                    let len = value
                        .parse()
                        .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
                    framing = Framing::Length(len);
                } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                    if value.to_ascii_lowercase().ends_with("chunked") {
                        framing = Framing::Chunked;
                    }
                } else if header.name.eq_ignore_ascii_case("connection") {
                    keep_alive = match value.to_ascii_lowercase().as_str() {
                        "close" => false,
                        "keep-alive" => true,
                        _ => keep_alive,
                    };
                } else if header.name.eq_ignore_ascii_case("retry-after") {
                    retry_after = value.parse().ok().map(Duration::from_secs);
                }
            }
            if status == 204 || status == 304 {
                framing = Framing::Length(0);
            }
            break (status, retry_after, keep_alive, framing, head_len);
        };
        let body = match framing {
            Framing::Length(len) => {
                let end = head_len + len;
                if self.read.len() < end {
                    self.read.reserve(end - self.read.len());
                }
                while self.read.len() < end {
                    if self.fill().await? == 0 {
                        return Err(closed());
                    }
                }
                &self.read[head_len..end]
            }
            Framing::UntilClose => {
                keep_alive = false;
                while self.fill().await? != 0 {}
                &self.read[head_len..]
            }
            Framing::Chunked => {
                self.read_chunked(head_len).await?;
                &self.chunked_body[..]
            }
        };
        if keep_alive && self.read.len() == head_len + body.len() {
            // Nothing else is due until the next request: mark the socket not readable, so the next
            // read waits for epoll instead of first trying a `recv` that would only say EAGAIN (a
            // syscall per request saved). tokio re-arms readiness on the next edge, so nothing is lost.
            let _ = self
                .stream
                .try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
        }
        Ok(Response {
            status,
            retry_after,
            keep_alive,
            body,
        })
    }

    /// Decodes a chunked body that starts at `self.read[start..]` into `self.chunked_body`.
    async fn read_chunked(&mut self, start: usize) -> io::Result<()> {
        self.chunked_body.clear();
        let mut pos = start;
        loop {
            let (data_start, size) = loop {
                match httparse::parse_chunk_size(&self.read[pos..]) {
                    Ok(httparse::Status::Complete((n, size))) => break (pos + n, size as usize),
                    Ok(httparse::Status::Partial) => {
                        if self.fill().await? == 0 {
                            return Err(closed());
                        }
                    }
                    Err(_) => return Err(invalid("bad chunk size")),
                }
            };
            // The chunk's data and its CRLF (for the last chunk: the end of an empty trailer).
            while self.read.len() < data_start + size + 2 {
                if self.fill().await? == 0 {
                    return Err(closed());
                }
            }
            if size == 0 {
                return Ok(());
            }
            self.chunked_body
                .extend_from_slice(&self.read[data_start..data_start + size]);
            pos = data_start + size + 2;
        }
    }
}
