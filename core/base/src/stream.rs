//! Turns the bytes of generated tokens into safe text deltas.
//!
//! A token can end in the middle of a multi-byte UTF-8 character, and a stop
//! sequence can be split across tokens. [`TextStream`] holds back incomplete
//! characters and any tail that could still become a stop sequence, so every
//! delta is valid UTF-8 and no part of a stop sequence is ever emitted.

/// What happened after feeding a token's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Text that is now safe to show (may be empty).
    pub text: String,
    /// A stop sequence completed; generation must end.
    pub stopped: bool,
}

/// Incremental UTF-8 decoder with stop-sequence detection.
#[derive(Debug, Default)]
pub struct TextStream {
    stops: Vec<String>,
    bytes: Vec<u8>,
    held: String,
    stopped: bool,
}

impl TextStream {
    /// A stream that ends at any of `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        TextStream { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Default::default() }
    }

    /// Feeds one token's bytes and returns what may be shown now.
    pub fn push(&mut self, piece: &[u8]) -> Step {
        if self.stopped {
            return Step { text: String::new(), stopped: true };
        }
        self.bytes.extend_from_slice(piece);
        self.decode_complete_chars();
        if let Some(at) = self.earliest_stop() {
            self.stopped = true;
            let text = self.held[..at].to_string();
            self.held.clear();
            self.bytes.clear();
            return Step { text, stopped: true };
        }
        let keep = self.longest_partial_stop();
        let emit_to = self.held.len() - keep;
        let text: String = self.held.drain(..emit_to).collect();
        Step { text, stopped: false }
    }

    /// Ends the stream: returns everything held back (incomplete bytes become U+FFFD).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let mut text = std::mem::take(&mut self.held);
        text.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.bytes)));
        text
    }

    fn decode_complete_chars(&mut self) {
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.bytes.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: the prefix up to `valid` is valid UTF-8.
                    self.held.push_str(std::str::from_utf8(&self.bytes[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.bytes.drain(..valid);
                            return;
                        }
                        // Invalid bytes: replace them and go on.
                        Some(len) => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            self.bytes.drain(..valid + len);
                        }
                    }
                }
            }
        }
    }

    fn earliest_stop(&self) -> Option<usize> {
        self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min()
    }

    /// Length of the longest suffix of `held` that is a proper prefix of a stop sequence.
    fn longest_partial_stop(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                if i > best && self.held.ends_with(&stop[..i]) {
                    best = i;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (Vec<String>, bool, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut stream = TextStream::new(&stops);
        let mut deltas = Vec::new();
        let mut stopped = false;
        for p in pieces {
            let step = stream.push(p);
            deltas.push(step.text);
            if step.stopped {
                stopped = true;
                break;
            }
        }
        let tail = stream.finish();
        (deltas, stopped, tail)
    }

    #[test]
    fn split_multibyte_characters_are_held_until_complete() {
        let emoji = "😀".as_bytes(); // 4 bytes
        let (deltas, stopped, tail) = run(&[], &[b"a", &emoji[..1], &emoji[1..3], &emoji[3..], "日本".as_bytes()]);
        assert_eq!(deltas, vec!["a", "", "", "😀", "日本"]);
        assert!(!stopped);
        assert_eq!(tail, "");
    }

    #[test]
    fn stop_sequence_split_across_tokens_is_never_emitted() {
        let (deltas, stopped, tail) = run(&["</end>"], &[b"Hello </", b"en", b"d> ignored"]);
        assert_eq!(deltas.concat(), "Hello ");
        assert!(stopped);
        assert_eq!(tail, "");
    }

    #[test]
    fn false_alarm_prefix_is_released() {
        let (deltas, stopped, tail) = run(&["STOP"], &[b"ST", b"ART", b" ok"]);
        assert_eq!(deltas, vec!["", "START", " ok"]);
        assert!(!stopped);
        assert_eq!(tail, "");
    }

    #[test]
    fn held_prefix_is_flushed_at_finish() {
        let (deltas, _, tail) = run(&["STOP"], &[b"abc ST"]);
        assert_eq!(deltas, vec!["abc "]);
        assert_eq!(tail, "ST");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (deltas, _, tail) = run(&[], &[b"a\xffb", &[0xE6]]);
        assert_eq!(deltas, vec!["a\u{FFFD}b", ""]);
        assert_eq!(tail, "\u{FFFD}");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (deltas, stopped, _) = run(&["world", "lo w"], &[b"hello world"]);
        assert_eq!(deltas.concat(), "hel");
        assert!(stopped);
    }
}
