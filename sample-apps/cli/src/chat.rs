//! `pocketlm chat`: interactive on a terminal, one message per line when piped.
//!
//! Ctrl-C while an answer streams cancels that answer (the partial answer is
//! kept); Ctrl-C at the prompt quits. `/reset` starts over, `/quit` leaves.
//! With `--session FILE` the conversation is restored from FILE and saved
//! after each answer.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use pocketlm::{CancelToken, Constraint, Error, Role, RouteOptions, RoutedChat, Tool, ToolChoice};

use crate::output;

/// Restores `chat` from `path` when the file exists, saying on stderr what came back.
fn restore(chat: &mut RoutedChat, path: &Path) -> Result<(), Error> {
    if !path.exists() {
        return Ok(());
    }
    let (restored, why) = chat.restore(path)?;
    match why {
        None => eprintln!("(restored {} messages and {} cached tokens from {})", restored.messages, restored.cached_tokens, path.display()),
        Some(e) => eprintln!("(restored {} messages from {}; the cache was not: {e})", restored.messages, path.display()),
    }
    Ok(())
}

/// Saves `chat` to `path`; a failure is reported and the chat goes on.
fn save(chat: &mut RoutedChat, path: &Path) {
    if let Err(e) = chat.save(path) {
        eprintln!("warning: the conversation was not saved: {e}");
    }
}

/// Runs the chat loop; every answer follows `constraint` when one is given.
pub fn run(
    mut chat: RoutedChat,
    constraint: Option<Constraint>,
    tools: (Vec<Tool>, ToolChoice),
    json: bool,
    session: Option<&Path>,
) -> Result<(), Error> {
    let (tools, tool_choice) = tools;
    if let Some(path) = session {
        restore(&mut chat, path)?;
    }
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
        eprintln!("pocketlm chat — /reset to start over, /quit to leave, Ctrl-C stops an answer.");
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
                let system = chat.messages().iter().filter(|m| m.role == Role::System).cloned().collect();
                chat.set_messages(system);
                if let Some(path) = session {
                    save(&mut chat, path);
                }
                if interactive {
                    eprintln!("(conversation reset)");
                }
                continue;
            }
            _ => {}
        }
        let options = RouteOptions {
            constraint: constraint.clone(),
            tools: tools.clone(),
            tool_choice: tool_choice.clone(),
            ..RouteOptions::default()
        };
        *current.lock().unwrap_or_else(|p| p.into_inner()) = Some(options.cancel.clone());
        let result = chat.send(line, &options, &mut |event| {
            if !json {
                output::print_event(&mut stdout, &event);
            }
        });
        *current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(path) = session {
            save(&mut chat, path);
        }
        match result {
            Ok(reply) if json => println!("{}", output::reply_json(&reply)),
            Ok(reply) => {
                println!();
                if interactive {
                    eprintln!("{}", output::route_line(&reply));
                }
            }
            // A failed turn leaves the conversation usable: report and go on.
            Err(e) if interactive => eprintln!("error: {e}"),
            Err(e) => return Err(e),
        }
    }
}
