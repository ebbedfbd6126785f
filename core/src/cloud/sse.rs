//! Server-sent events, parsed incrementally and bounded in memory.

use crate::error::{CloudErrorKind, Error, Result};

/// Longest single line, or event, of a server-sent event stream accepted (an
/// OpenAI delta is a few hundred bytes); a longer one is a malformed stream.
pub(crate) const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

fn oversized(what: &str) -> Error {
    Error::Cloud {
        kind: CloudErrorKind::MalformedStream,
        detail: format!("an event-stream {what} longer than {MAX_SSE_EVENT_BYTES} bytes"),
    }
}

/// Splits a server-sent event stream into the `data` of each event,
/// incrementally: each byte is scanned once, whatever the chunking, and only
/// the current line and event are kept. Lines end in LF, CRLF or CR.
#[derive(Debug, Default)]
pub(crate) struct SseBuffer {
    /// The current line so far, without its end.
    line: Vec<u8>,
    /// The current event's data lines so far, joined with LF.
    data: Vec<u8>,
    /// Whether the current event has a data field (which may be empty).
    has_data: bool,
    /// The last chunk ended in CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
}

impl SseBuffer {
    /// Adds bytes; returns the data of every event completed by them. A line
    /// or an event longer than [`MAX_SSE_EVENT_BYTES`] is a malformed stream.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&bytes[..end])?;
            self.end_line(&mut out)?;
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.extend_line(bytes)?;
        Ok(out)
    }

    fn extend_line(&mut self, part: &[u8]) -> Result<()> {
        if self.line.len() + part.len() > MAX_SSE_EVENT_BYTES {
            return Err(oversized("line"));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// Handles the complete current line: a blank line ends the event.
    fn end_line(&mut self, out: &mut Vec<String>) -> Result<()> {
        if self.line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                out.push(String::from_utf8_lossy(&self.data).into_owned());
            }
            self.data.clear();
            return Ok(());
        }
        let value = match self.line.strip_prefix(b"data") {
            Some([]) => Some(&[][..]),
            Some([b':', rest @ ..]) => Some(rest.strip_prefix(b" ").unwrap_or(rest)),
            _ => None, // comments, other fields (event, id, retry), other names
        };
        if let Some(value) = value {
            let separator = usize::from(self.has_data);
            if self.data.len() + separator + value.len() > MAX_SSE_EVENT_BYTES {
                return Err(oversized("event"));
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        self.line.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut sse = SseBuffer::default();
        assert!(sse.push(b"data: {\"a\":").unwrap().is_empty());
        assert_eq!(sse.push(b"1}\n\ndata: [DO").unwrap(), vec!["{\"a\":1}"]);
        assert_eq!(sse.push(b"NE]\r\n\r\n: comment\n\n").unwrap(), vec!["[DONE]"]);
        assert!(sse.line.is_empty() && sse.data.is_empty());
    }

    #[test]
    fn line_ends_split_anywhere_multi_line_data_and_other_fields() {
        let mut sse = SseBuffer::default();
        assert!(sse.push(b"event: x\rid: 1\rdata: a\r").unwrap().is_empty());
        // The LF completing the CRLF arrives in the next chunk: still one line end.
        assert!(sse.push(b"\n").unwrap().is_empty());
        assert_eq!(sse.push(b"data:b\ndata\n\n").unwrap(), vec!["a\nb\n"]);
        assert_eq!(sse.push(b"data: \xc3").unwrap(), Vec::<String>::new());
        assert_eq!(sse.push(b"\xa9\r\r").unwrap(), vec!["\u{e9}"], "a character split across chunks");
    }

    #[test]
    fn an_oversized_line_or_event_is_a_malformed_stream() {
        let kind = |r: Result<Vec<String>>| match r {
            Err(Error::Cloud { kind, .. }) => kind,
            other => panic!("expected an error, got {other:?}"),
        };
        let mut sse = SseBuffer::default();
        let chunk = vec![b'x'; 64 << 10];
        assert!(sse.push(b"data: ").unwrap().is_empty());
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_SSE_EVENT_BYTES / chunk.len() {
            result = sse.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(kind(result), CloudErrorKind::MalformedStream);
        assert!(sse.line.len() <= MAX_SSE_EVENT_BYTES);

        // Many short data lines adding up to too much.
        let mut sse = SseBuffer::default();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_SSE_EVENT_BYTES / 1000 {
            result = sse.push(line.as_bytes());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(kind(result), CloudErrorKind::MalformedStream);
        assert!(sse.data.len() <= MAX_SSE_EVENT_BYTES);
    }

    #[test]
    fn a_long_event_fed_byte_by_byte_is_parsed_in_linear_time() {
        // Rescanning the buffer on every chunk would make this ~10^11 steps.
        let event = format!("data: {}\n\n", "z".repeat(600_000));
        let mut sse = SseBuffer::default();
        let started = Instant::now();
        let mut out = Vec::new();
        for byte in event.as_bytes() {
            out.extend(sse.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 600_000);
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
