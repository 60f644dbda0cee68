//! The benchmark's HTTP/1.1 client for the measured requests: blocking, one keep-alive connection
//! per worker thread, `TCP_NODELAY`, each request written with one `write` call.
//!
//! Why not reqwest (which `nimbus::client::ApiClient` uses for the control plane)? On a 2-core
//! machine the client shares the CPU with the server and the function, and an async client stack
//! adds its own tens of microseconds and wake-ups to every number. This client costs two syscalls
//! per request, so what the benchmark reports is as close to Nimbus's own cost as a client can get.
//! (The report also has a row measured through `ApiClient`, to show what a typical async client adds.)
//!
//! It reads `Content-Length` and chunked bodies, honours `Connection: close`, and reconnects once
//! when a kept-alive connection turns out to be closed before any byte of the answer arrived.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// A response head larger than this is a broken server.
const HEAD_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 connection to `addr`, opened lazily and reopened after the server closes it.
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buffered: Vec<u8>,
    /// How many TCP connections this client opened (one, unless the server closed some).
    pub connects: u64,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Connection {
        Connection { addr, stream: None, buffered: Vec::new(), connects: 0 }
    }

    /// Opens the connection now, so that the first measured request does not pay for it.
    pub fn connect(&mut self) -> anyhow::Result<()> {
        let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))
            .with_context(|| format!("connect to {}", self.addr))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        self.stream = Some(stream);
        self.buffered.clear();
        self.connects += 1;
        Ok(())
    }

    /// Sends one request. `headers` must include `host`; `content-length` is added here.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let mut message = Vec::with_capacity(512 + body.len());
        message.extend_from_slice(method.as_bytes());
        message.push(b' ');
        message.extend_from_slice(path.as_bytes());
        message.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            message.extend_from_slice(name.as_bytes());
            message.extend_from_slice(b": ");
            message.extend_from_slice(value.as_bytes());
            message.extend_from_slice(b"\r\n");
        }
        message.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        message.extend_from_slice(body);

        let reused = self.stream.is_some();
        match self.exchange(&message) {
            Ok(response) => Ok(response),
            Err(Exchange::BeforeAnswer(e)) if reused => {
                // The server closed an idle kept-alive connection; this request never reached it.
                self.connect().with_context(|| format!("reconnect after: {e}"))?;
                self.exchange(&message).map_err(|e| anyhow::anyhow!("{method} {path}: {}", e.error()))
            }
            Err(e) => Err(anyhow::anyhow!("{method} {path}: {}", e.error())),
        }
    }

    fn exchange(&mut self, message: &[u8]) -> Result<Response, Exchange> {
        if self.stream.is_none() {
            self.connect().map_err(|e| Exchange::Failed(io::Error::other(format!("{e:#}"))))?;
        }
        let result = self.exchange_on_stream(message);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange_on_stream(&mut self, message: &[u8]) -> Result<Response, Exchange> {
        let stream = self.stream.as_mut().ok_or_else(|| Exchange::Failed(io::Error::other("not connected")))?;
        stream.write_all(message).map_err(Exchange::BeforeAnswer)?;
        // Nothing of the answer yet: an error here means the request may never have been seen.
        if self.buffered.is_empty() {
            self.fill().map_err(Exchange::BeforeAnswer)?;
        }
        self.read_response().map_err(Exchange::Failed)
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at;
            }
            if self.buffered.len() > HEAD_BYTES_MAX {
                return Err(io::Error::other("response head too large"));
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buffered[..head_end])
            .map_err(|_| io::Error::other("response head is not UTF-8"))?
            .to_owned();
        self.buffered.drain(..head_end + 4);

        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let chunked = value("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let close = value("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let length = value("content-length")
            .map(|v| v.parse::<usize>().map_err(|_| io::Error::other(format!("bad content-length {v:?}"))))
            .transpose()?;
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            self.read_chunked()?
        } else if let Some(length) = length {
            self.read_exact_body(length)?
        } else {
            self.read_to_close()?
        };
        if close || (length.is_none() && !chunked && status != 204 && status != 304) {
            self.stream = None;
        }
        Ok(Response { status, headers, body })
    }

    fn read_exact_body(&mut self, length: usize) -> io::Result<Vec<u8>> {
        while self.buffered.len() < length {
            self.fill()?;
        }
        Ok(self.buffered.drain(..length).collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        let end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n") {
                break at;
            }
            if self.buffered.len() > HEAD_BYTES_MAX {
                return Err(io::Error::other("chunk line too long"));
            }
            self.fill()?;
        };
        let line = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
        self.buffered.drain(..end + 2);
        Ok(line)
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                while !self.read_line()?.is_empty() {} // trailers, then the empty line
                return Ok(body);
            }
            let mut chunk = self.read_exact_body(size + 2)?;
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
        }
    }

    fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(std::mem::take(&mut self.buffered));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.buffered.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

enum Exchange {
    /// Failed before any byte of the answer arrived.
    BeforeAnswer(io::Error),
    Failed(io::Error),
}

impl Exchange {
    fn error(&self) -> &io::Error {
        match self {
            Exchange::BeforeAnswer(e) | Exchange::Failed(e) => e,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Fails unless `response` has the `expected` status, showing the AWS error it carries otherwise.
pub fn expect_status(response: &Response, expected: u16, what: &str) -> anyhow::Result<()> {
    if response.status != expected {
        bail!(
            "{what}: HTTP {} {}: {}",
            response.status,
            response.header("x-amzn-errortype").unwrap_or_default(),
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves scripted answers, one per request, on one connection.
    fn serve(answers: Vec<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            for answer in answers {
                let mut seen = Vec::new();
                while find(&seen, b"\r\n\r\n").is_none() {
                    let mut chunk = [0u8; 1024];
                    let n = socket.read(&mut chunk).expect("read");
                    assert!(n > 0);
                    seen.extend_from_slice(&chunk[..n]);
                }
                socket.write_all(answer.as_bytes()).expect("write");
            }
        });
        addr
    }

    #[test]
    fn reads_length_chunked_and_keeps_the_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
        ]);
        let mut conn = Connection::new(addr);
        let host = vec![("host".to_owned(), addr.to_string())];
        let first = conn.request("GET", "/", &host, b"").expect("first");
        assert_eq!((first.status, first.body.as_slice()), (200, b"hello".as_slice()));
        assert_eq!(first.header("x-thing"), Some("a"));
        let second = conn.request("POST", "/", &host, b"{}").expect("second");
        assert_eq!(second.body, b"abcde");
        let third = conn.request("GET", "/", &host, b"").expect("third");
        assert_eq!((third.status, third.body.len()), (204, 0));
        assert_eq!(conn.connects, 1, "all three on one kept-alive connection");
    }
}
