//! `echo-bootstrap`: the `provided.al2023` echo function the benchmark deploys (zipped as `bootstrap`).
//!
//! It is a complete Lambda runtime in one file, standard library only: it loops
//! `GET /2018-06-01/runtime/invocation/next` → `POST /2018-06-01/runtime/invocation/{id}/response`
//! with the event as the response body, over one keep-alive HTTP/1.1 connection with `TCP_NODELAY`.
//! Each request goes out in a single write. So the time an invocation spends in this process is a
//! few syscalls, and what the benchmark measures is Nimbus.
//!
//! It parses what it needs and no more: the status line, `Content-Length`, `Transfer-Encoding:
//! chunked` (Nimbus does not send it, but a runtime must not break if it does), `Connection: close`
//! and `Lambda-Runtime-Aws-Request-Id`. Any failure of the Runtime API ends the process with a
//! message on stderr, which is what Lambda expects of a runtime.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
/// A response head larger than this is not from a Runtime API.
const HEAD_BYTES_MAX: usize = 64 * 1024;

fn main() -> ExitCode {
    let api = match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) if !api.is_empty() => api,
        _ => {
            eprintln!("echo-bootstrap: AWS_LAMBDA_RUNTIME_API is not set");
            return ExitCode::FAILURE;
        }
    };
    match serve(&api) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-bootstrap: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Echoes events until the Runtime API goes away.
fn serve(api: &str) -> io::Result<()> {
    let mut conn = Connection::open(api)?;
    loop {
        let next = conn.request("GET", NEXT, &[])?;
        if next.status != 200 {
            return Err(other(format!("GET {NEXT} answered {}: {}", next.status, String::from_utf8_lossy(&next.body))));
        }
        let request_id =
            next.request_id.ok_or_else(|| other("the event has no Lambda-Runtime-Aws-Request-Id".into()))?;
        let path = format!("/2018-06-01/runtime/invocation/{request_id}/response");
        let posted = conn.request("POST", &path, &next.body)?;
        if posted.status != 202 {
            // The server refused this response (for example, the invocation already timed out);
            // the next event can still be served.
            eprintln!(
                "echo-bootstrap: POST {path} answered {}: {}",
                posted.status,
                String::from_utf8_lossy(&posted.body)
            );
        }
    }
}

struct Response {
    status: u16,
    request_id: Option<String>,
    body: Vec<u8>,
}

/// One keep-alive connection to the Runtime API, reopened when the server closes it.
struct Connection {
    api: String,
    stream: Option<TcpStream>,
    /// Bytes read past the end of the last response.
    buffered: Vec<u8>,
}

impl Connection {
    fn open(api: &str) -> io::Result<Connection> {
        let mut conn = Connection { api: api.to_owned(), stream: None, buffered: Vec::new() };
        conn.connect()?;
        Ok(conn)
    }

    fn connect(&mut self) -> io::Result<&mut TcpStream> {
        let stream = TcpStream::connect(&self.api).map_err(|e| other(format!("connect to {}: {e}", self.api)))?;
        stream.set_nodelay(true)?;
        self.buffered.clear();
        Ok(self.stream.insert(stream))
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let mut message = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.api).into_bytes();
        if method == "POST" {
            message.extend_from_slice(
                format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()).as_bytes(),
            );
        }
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(body);
        // A kept-alive connection the server closed while this process was frozen fails on first
        // use; that request is sent once more on a fresh connection. A fresh one that fails is fatal.
        let reused = self.stream.is_some();
        match self.exchange(&message) {
            Err(_) if reused => {
                self.connect()?;
                self.exchange(&message)
            }
            result => result,
        }
    }

    fn exchange(&mut self, message: &[u8]) -> io::Result<Response> {
        let stream = match self.stream.as_mut() {
            Some(stream) => stream,
            None => self.connect()?,
        };
        let result = stream.write_all(message).and_then(|()| self.read_response());
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at;
            }
            if self.buffered.len() > HEAD_BYTES_MAX {
                return Err(other("response head too large".into()));
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        self.buffered.drain(..head_end + 4);

        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| other(format!("bad status line {status_line:?}")))?;
        let (mut length, mut chunked, mut close, mut request_id) = (None, false, false, None);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| other(format!("bad Content-Length {value:?}")))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
                request_id = Some(value.to_owned());
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else if let Some(length) = length {
            self.read_exact_body(length)?
        } else if close {
            self.read_to_close()?
        } else {
            Vec::new()
        };
        if close {
            self.stream = None;
        }
        Ok(Response { status, request_id, body })
    }

    fn read_exact_body(&mut self, length: usize) -> io::Result<Vec<u8>> {
        while self.buffered.len() < length {
            self.fill()?;
        }
        Ok(self.buffered.drain(..length).collect())
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffered, b"\r\n") {
                    break at;
                }
                self.fill()?;
            };
            let line = String::from_utf8_lossy(&self.buffered[..line_end]).into_owned();
            self.buffered.drain(..line_end + 2);
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size_text, 16).map_err(|_| other(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let end = loop {
                        if let Some(at) = find(&self.buffered, b"\r\n") {
                            break at;
                        }
                        self.fill()?;
                    };
                    self.buffered.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            body.extend(self.read_exact_body(size + 2)?.drain(..size));
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

    /// Reads more bytes into the buffer; end of stream is an `UnexpectedEof` error.
    fn fill(&mut self) -> io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(|| other("the connection is closed".into()))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the Runtime API closed the connection"));
        }
        self.buffered.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn other(message: String) -> io::Error {
    io::Error::other(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A fake Runtime API: answers each request on one connection with the next scripted reply
    /// and hands back what it received.
    fn fake_api(replies: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let handle = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut seen = Vec::new();
            for reply in replies {
                let mut request = Vec::new();
                while find(&request, b"\r\n\r\n").is_none() {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).expect("read");
                    assert!(n > 0, "the bootstrap closed the connection");
                    request.extend_from_slice(&chunk[..n]);
                }
                seen.push(String::from_utf8_lossy(&request).into_owned());
                socket.write_all(reply.as_bytes()).expect("write");
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn reads_length_and_chunked_bodies_on_one_connection() {
        let (addr, server) = fake_api(vec![
            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-1\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: id-2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n4;x=1\r\n\":2}\r\n0\r\n\r\n",
        ]);
        let mut conn = Connection::open(&addr).expect("connect");
        let first = conn.request("GET", NEXT, &[]).expect("first event");
        assert_eq!((first.status, first.request_id.as_deref()), (200, Some("id-1")));
        assert_eq!(first.body, br#"{"a":1}"#);
        let posted = conn.request("POST", "/2018-06-01/runtime/invocation/id-1/response", &first.body).expect("post");
        assert_eq!(posted.status, 202);
        let second = conn.request("GET", NEXT, &[]).expect("chunked event");
        assert_eq!(second.request_id.as_deref(), Some("id-2"));
        assert_eq!(second.body, br#"{"b":2}"#);
        let seen = server.join().expect("fake api");
        assert!(seen[1].contains("Content-Length: 7\r\n") && seen[1].ends_with("\r\n\r\n{\"a\":1}"), "{}", seen[1]);
    }
}
