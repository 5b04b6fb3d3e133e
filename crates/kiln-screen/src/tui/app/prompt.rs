//! The value prompt (`e`): typing an exact dropout or learning rate, checked before it is sent.
//! It only edits the prompt; `update` acts on what it ends with.

use super::{Action, Prompt};
use crate::format::lr;
use crate::protocol::HyperParameter;

/// How a key left the prompt.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Edited {
    /// Still open, maybe changed.
    Open(Prompt),
    Cancelled,
    /// Ctrl-C: close the prompt, then treat it as anywhere else.
    Interrupted,
    /// A valid value for the prompt's field.
    Submitted(HyperParameter, f64),
}

/// The values in force, offered when the field changes.
pub(super) struct Current {
    pub dropout: f64,
    pub learning_rate: f64,
}

pub(super) fn edit(mut prompt: Prompt, action: Action, current: &Current) -> Edited {
    match action {
        Action::Type(c) if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+') => {
            prompt.input.push(c);
            prompt.error = None;
        }
        Action::Backspace => {
            prompt.input.pop();
            prompt.error = None;
        }
        Action::SwitchField => {
            prompt.field = match prompt.field {
                HyperParameter::Dropout => HyperParameter::LearningRate,
                // The backbone is a switch (`b`), not a typed value.
                HyperParameter::LearningRate | HyperParameter::BackboneFrozen => {
                    HyperParameter::Dropout
                }
            };
            prompt.input = match prompt.field {
                HyperParameter::LearningRate => lr(current.learning_rate),
                _ => format!("{:.2}", current.dropout),
            };
            prompt.error = None;
        }
        Action::Cancel => return Edited::Cancelled,
        Action::Interrupt => return Edited::Interrupted,
        Action::Submit => match validate(&prompt) {
            Ok(value) => return Edited::Submitted(prompt.field, value),
            Err(error) => prompt.error = Some(error),
        },
        _ => {}
    }
    Edited::Open(prompt)
}

fn validate(prompt: &Prompt) -> Result<f64, String> {
    let value: f64 = prompt
        .input
        .trim()
        .parse()
        .map_err(|_| format!("\"{}\" is not a number", prompt.input))?;
    match prompt.field {
        HyperParameter::Dropout if !(0.0..1.0).contains(&value) => {
            Err("dropout must be in [0, 1)".into())
        }
        HyperParameter::LearningRate if !(value.is_finite() && value > 0.0) => {
            Err("the learning rate must be positive".into())
        }
        _ => Ok(value),
    }
}
