//! What the fuzz targets share: the text forms their inputs take, so that the seed corpora are readable
//! real requests (see docs/FUZZING.md) and libFuzzer's mutations of them stay mostly well-formed.

use bytes::Bytes;

/// An HTTP/1.1 request as text: `METHOD target` on the first line, then `Name: value` header lines,
/// an empty line, and the body (the rest, byte for byte). `\r\n` and `\n` both end lines.
/// `None` when the head cannot make an `http::Request` (the server would never see such a request).
pub fn raw_request(data: &[u8]) -> Option<http::Request<Bytes>> {
    let (head, body) = split_once(data, b"\r\n\r\n").or_else(|| split_once(data, b"\n\n")).unwrap_or((data, b""));
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name, value.trim_start());
    }
    builder.body(Bytes::copy_from_slice(body)).ok()
}

/// `Operation\nbody`: the `X-Amz-Target` operation of a JSON-protocol request, then its body.
pub fn operation_and_body(data: &[u8]) -> Option<(&str, &[u8])> {
    let (operation, body) = split_once(data, b"\n")?;
    Some((std::str::from_utf8(operation).ok()?.trim(), body))
}

/// Splits at the first `sep`.
pub fn split_once<'a>(data: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = data.windows(sep.len()).position(|w| w == sep)?;
    Some((&data[..at], &data[at + sep.len()..]))
}

/// A current-thread runtime whose clock is paused: timers fire as soon as nothing else can run, so a
/// long poll or a timeout costs no real time.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
}
