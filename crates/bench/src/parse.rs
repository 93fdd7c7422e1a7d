//! An incremental, allocation-free HTTP/1.1 response parser.
//!
//! It reads the status line and the few headers that frame a response (Content-Length,
//! Transfer-Encoding, Connection, Retry-After) and streams the body out through a callback,
//! so a body never has to fit in the read buffer.

use memchr::memmem;

/// Longest response head accepted; the read buffer must be larger.
pub const MAX_HEAD: usize = 32 * 1024;
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed status line")]
    StatusLine,
    #[error("malformed header")]
    Header,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("response head too large")]
    HeadTooLarge,
    #[error("malformed chunk")]
    Chunk,
    #[error("protocol upgrade not supported")]
    Upgrade,
    #[error("connection closed mid-response")]
    Truncated,
}

/// A complete response, without its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The server will close the connection after this response.
    pub close: bool,
    /// Retry-After in seconds, when given as a number.
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
}

/// Parser state for one connection; reusable across responses.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    state: State,
    current: Response,
    /// Responses to HEAD requests carry no body whatever their headers say.
    no_body: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new(false)
    }
}

struct Head {
    response: Response,
    length: Option<u64>,
    chunked: bool,
}

impl ResponseParser {
    pub fn new(no_body: bool) -> Self {
        Self {
            state: State::Head,
            current: Response {
                status: 0,
                close: false,
                retry_after: None,
            },
            no_body,
        }
    }

    /// True between responses (nothing of the next one seen yet).
    pub fn idle(&self) -> bool {
        self.state == State::Head
    }

    /// Consumes bytes from `buf`. Returns how many were used and the response if one
    /// completed; stops right after a completed response so the caller can account for it.
    /// Fewer bytes than `buf.len()` used without a response means more input is needed.
    pub fn advance(
        &mut self,
        buf: &[u8],
        mut on_body: impl FnMut(&[u8]),
    ) -> Result<(usize, Option<Response>), ParseError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.state {
                State::Head => {
                    let Some(end) = memmem::find(rest, b"\r\n\r\n") else {
                        if rest.len() > MAX_HEAD {
                            return Err(ParseError::HeadTooLarge);
                        }
                        return Ok((at, None));
                    };
                    let head = parse_head(&rest[..end + 2])?;
                    at += end + 4;
                    let status = head.response.status;
                    if (100..200).contains(&status) {
                        if status == 101 {
                            return Err(ParseError::Upgrade);
                        }
                        continue; // interim response: the real one follows
                    }
                    self.current = head.response;
                    if self.no_body || status == 204 || status == 304 {
                        return Ok((at, Some(self.finish())));
                    }
                    self.state = if head.chunked {
                        State::ChunkSize
                    } else if let Some(length) = head.length {
                        State::Fixed(length)
                    } else {
                        self.current.close = true;
                        State::UntilClose
                    };
                }
                State::Fixed(0) => return Ok((at, Some(self.finish()))),
                State::Fixed(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok((at, None));
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    on_body(&rest[..take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Fixed(_) => State::Fixed(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::ChunkSize => {
                    let Some(line) = take_line(rest, MAX_CHUNK_LINE)? else {
                        return Ok((at, None));
                    };
                    let size = parse_chunk_size(&rest[..line.0])?;
                    at += line.1;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    let Some(line) = take_line(rest, 2)? else {
                        return Ok((at, None));
                    };
                    if line.0 != 0 {
                        return Err(ParseError::Chunk);
                    }
                    at += line.1;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let Some(line) = take_line(rest, MAX_HEAD)? else {
                        return Ok((at, None));
                    };
                    at += line.1;
                    if line.0 == 0 {
                        return Ok((at, Some(self.finish())));
                    }
                }
                State::UntilClose => {
                    on_body(rest);
                    return Ok((buf.len(), None));
                }
            }
        }
    }

    /// The peer closed the connection: completes a response delimited by the close.
    pub fn eof(&mut self) -> Result<Option<Response>, ParseError> {
        match self.state {
            State::Head => Ok(None),
            State::UntilClose => Ok(Some(self.finish())),
            _ => Err(ParseError::Truncated),
        }
    }

    fn finish(&mut self) -> Response {
        self.state = State::Head;
        self.current
    }
}

/// Finds the end of a line: (length without CR LF, length with it). Errors past `max`.
fn take_line(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, ParseError> {
    match memchr::memchr(b'\n', buf) {
        Some(nl) => {
            let len = if nl > 0 && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Ok(Some((len, nl + 1)))
        }
        None if buf.len() > max => Err(ParseError::Chunk),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(line)
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(ParseError::Chunk);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(16).ok_or(ParseError::Chunk)?;
        Ok(acc * 16 + u64::from(digit))
    })
}

/// Parses a head (status line and headers, each line ending in CR LF).
fn parse_head(head: &[u8]) -> Result<Head, ParseError> {
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().ok_or(ParseError::StatusLine)?;
    // "HTTP/1.1 200 OK": version, one space, three digits.
    if status_line.len() < 12
        || !status_line.starts_with(b"HTTP/1.")
        || status_line[8] != b' '
        || !status_line[9..12].iter().all(u8::is_ascii_digit)
    {
        return Err(ParseError::StatusLine);
    }
    let status = status_line[9..12]
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(ParseError::StatusLine);
    }
    let http10 = status_line[7] == b'0';
    let mut head = Head {
        response: Response {
            status,
            close: http10,
            retry_after: None,
        },
        length: None,
        chunked: false,
    };
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = memchr::memchr(b':', line).ok_or(ParseError::Header)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_decimal(value).ok_or(ParseError::ContentLength)?;
            if head.length.is_some_and(|seen| seen != length) {
                return Err(ParseError::ContentLength);
            }
            head.length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.chunked = ends_with_token(value, b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                head.response.close = true;
            } else if has_token(value, b"keep-alive") {
                head.response.close = false;
            }
        } else if name.eq_ignore_ascii_case(b"retry-after") {
            head.response.retry_after = parse_decimal(value);
        }
    }
    Ok(head)
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')),
    )
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn ends_with_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, as a socket would.
    fn parse_all(input: &[u8], step: usize) -> (Vec<Response>, Vec<u8>) {
        let mut parser = ResponseParser::default();
        let (mut done, mut body, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                let (used, response) = parser.advance(&buf, |b| body.extend_from_slice(b)).unwrap();
                buf.drain(..used);
                match response {
                    Some(r) => done.push(r),
                    None => break,
                }
            }
        }
        if let Some(r) = parser.eof().unwrap() {
            done.push(r);
        }
        (done, body)
    }

    const TWO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 500 Internal\r\ncontent-length:0\r\nConnection: close\r\n\r\n";

    #[test]
    fn content_length_in_any_split() {
        for step in [1, 2, 7, 1000] {
            let (done, body) = parse_all(TWO, step);
            assert_eq!(done.len(), 2, "step {step}");
            assert_eq!((done[0].status, done[0].close), (200, false));
            assert_eq!((done[1].status, done[1].close), (500, true));
            assert_eq!(body, b"hello");
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        for step in [1, 3, 1000] {
            let (done, body) = parse_all(input, step);
            assert_eq!(
                done.iter().map(|r| r.status).collect::<Vec<_>>(),
                [200, 204]
            );
            assert_eq!(body, b"Wikipedia");
        }
    }

    #[test]
    fn interim_and_close_delimited() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nabc";
        let (done, body) = parse_all(input, 4);
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].status, done[0].close), (200, true));
        assert_eq!(body, b"abc");
    }

    #[test]
    fn retry_after_and_http10_keep_alive() {
        let input = b"HTTP/1.0 429 Too Many\r\nConnection: keep-alive\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n";
        let (done, _) = parse_all(input, 100);
        assert_eq!(done[0].retry_after, Some(3));
        assert!(!done[0].close);
    }

    #[test]
    fn head_requests_have_no_body() {
        let mut parser = ResponseParser::new(true);
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let (used, response) = parser.advance(input, |_| {}).unwrap();
        assert_eq!(used, input.len());
        assert_eq!(response.map(|r| r.status), Some(200));
    }

    #[test]
    fn rejects_garbage() {
        let bad: [&[u8]; 6] = [
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ];
        for input in bad {
            let mut parser = ResponseParser::default();
            assert!(parser.advance(input, |_| {}).is_err(), "{input:?}");
        }
    }

    #[test]
    fn truncated_body_is_an_error() {
        let mut parser = ResponseParser::default();
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(parser.advance(input, |_| {}).unwrap(), (input.len(), None));
        assert_eq!(parser.eof(), Err(ParseError::Truncated));
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut parser = ResponseParser::default();
        let input = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(
            parser.advance(&input, |_| {}),
            Err(ParseError::HeadTooLarge)
        );
    }
}
