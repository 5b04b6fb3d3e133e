//! The terminal's side of a notice: the bell, and a desktop notification asked for with OSC 9
//! or OSC 777, wrapped so tmux passes it to the terminal outside.

use super::{Desktop, Notice, NotifyConfig};

/// The bytes that ring the bell and ask for the desktop notification `config` names; empty when
/// both are off. Inside tmux (`tmux` true) the OSC sequences go in tmux's passthrough (which
/// needs `set -g allow-passthrough on` in tmux 3.3 and later); the bell needs no wrapping, tmux
/// forwards it as its own.
pub fn sequence(notice: &Notice, config: &NotifyConfig, tmux: bool) -> String {
    let title = clean(&notice.title);
    let body = clean(&notice.body);
    let mut out = String::new();
    if config.bell {
        out.push('\x07');
    }
    let osc9 = || format!("\x1b]9;{title}: {body}\x07");
    // OSC 777 separates its fields with ';'.
    let osc777 = || {
        format!(
            "\x1b]777;notify;{};{}\x07",
            title.replace(';', ","),
            body.replace(';', ",")
        )
    };
    let wanted = match config.desktop {
        Desktop::Osc9 => vec![osc9()],
        Desktop::Osc777 => vec![osc777()],
        Desktop::Both => vec![osc9(), osc777()],
        Desktop::Off => Vec::new(),
    };
    for osc in wanted {
        if tmux {
            out.push_str(&format!(
                "\x1bPtmux;{}\x1b\\",
                osc.replace('\x1b', "\x1b\x1b")
            ));
        } else {
            out.push_str(&osc);
        }
    }
    out
}

/// One line without control characters (an error message may hold newlines or escapes, which
/// would end the sequence early or reach the terminal raw), at most 200 characters.
fn clean(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
