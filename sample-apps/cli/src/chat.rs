//! `pocketlm chat`: interactive on a terminal, one message per line when piped.
//!
//! Ctrl-C while an answer streams cancels that answer (the partial answer is
//! kept); Ctrl-C at the prompt quits. `/reset` starts over, `/quit` leaves.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use pocketlm::{CancelToken, Conversation, Error, SendOptions};

use crate::output;

pub fn run(mut chat: Conversation, json: bool) -> Result<(), Error> {
    let interactive = std::io::stdin().is_terminal();
    let current: Arc<Mutex<Option<CancelToken>>> = Arc::default();
    {
        let current = Arc::clone(&current);
        // If the handler cannot be installed, Ctrl-C keeps its default meaning.
        let _ = ctrlc::set_handler(move || match current.lock().ok().and_then(|c| c.clone()) {
            Some(token) => token.cancel(),
            None => std::process::exit(130),
        });
    }
    if interactive && !json {
        eprintln!("pocketlm chat: {} — /reset to start over, /quit to leave, Ctrl-C stops an answer.", chat.model().path().display());
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        if interactive {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| Error::InvalidOption {
            name: "stdin",
            value: e.to_string(),
            expected: "readable UTF-8 text".into(),
        })? == 0
        {
            return Ok(());
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/quit" | "/exit" => return Ok(()),
            "/reset" => {
                chat.reset();
                if interactive {
                    eprintln!("(conversation reset)");
                }
                continue;
            }
            _ => {}
        }
        let options = SendOptions::default();
        *current.lock().unwrap_or_else(|p| p.into_inner()) = Some(options.cancel.clone());
        let result = chat.send(line, &options, &mut |delta| {
            if !json {
                let _ = stdout.write_all(delta.as_bytes());
                let _ = stdout.flush();
            }
        });
        *current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match result {
            Ok(reply) if json => {
                println!("{}", serde_json::json!({ "text": reply.text, "metrics": reply.metrics }));
            }
            Ok(reply) => {
                println!();
                if interactive {
                    eprintln!("{}", output::metrics_line(&reply.metrics));
                }
            }
            // A failed turn leaves the conversation usable: report and go on.
            Err(e) if interactive => eprintln!("error: {e}"),
            Err(e) => return Err(e),
        }
    }
}
