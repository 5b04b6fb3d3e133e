//! Colours and glyphs. Only the terminal's basic colours (readable on dark and light themes),
//! none at all under NO_COLOR, and plain ASCII for terminals without block or braille fonts.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;

/// How the image view shows pictures (`--images`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ImagesChoice {
    /// What the terminal says it supports (half blocks inside tmux without passthrough, or
    /// when it answers nothing); a text list with --ascii or NO_COLOR.
    #[default]
    Auto,
    /// Half blocks in colour, whatever else is set.
    Halfblocks,
    /// A text list of captions.
    Off,
    /// Sixel graphics (xterm -ti vt340, foot, WezTerm, Konsole, mlterm, …).
    Sixel,
    /// The kitty graphics protocol (kitty, WezTerm, Ghostty, Konsole).
    Kitty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
    /// Pictures drawn (half blocks or a graphics protocol); off: their captions as a list.
    pub pictures: bool,
    /// How pictures were asked for (`--images`).
    pub images: ImagesChoice,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            color: true,
            ascii: false,
            pictures: true,
            images: ImagesChoice::Halfblocks,
        }
    }
}

impl Theme {
    /// Colour unless NO_COLOR is set (https://no-color.org: any non-empty value).
    pub fn from_env(ascii: bool, images: ImagesChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !no_color,
            ascii,
            pictures: match images {
                ImagesChoice::Auto => !no_color && !ascii,
                ImagesChoice::Halfblocks | ImagesChoice::Sixel | ImagesChoice::Kitty => true,
                ImagesChoice::Off => false,
            },
            images,
        }
    }

    fn colored(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn good(&self) -> Style {
        self.colored(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.colored(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn bad(&self) -> Style {
        self.colored(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn accent(&self) -> Style {
        self.colored(Color::Cyan)
    }

    pub fn dim(&self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    pub fn strong(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Second series on charts (validation).
    pub fn second(&self) -> Style {
        self.colored(Color::Magenta)
    }

    pub fn marker(&self) -> Marker {
        if self.ascii {
            Marker::Dot
        } else {
            Marker::Braille
        }
    }

    /// Sparkline levels, lowest first.
    pub fn spark_levels(&self) -> &'static [char] {
        if self.ascii {
            &['_', '.', '-', '~', '=', '+', '*', '#']
        } else {
            &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
        }
    }

    pub fn arrow(&self, rising: Option<bool>) -> &'static str {
        match (rising, self.ascii) {
            (Some(true), false) => "↑",
            (Some(false), false) => "↓",
            (None, false) => "→",
            (Some(true), true) => "^",
            (Some(false), true) => "v",
            (None, true) => "-",
        }
    }

    pub fn best_mark(&self) -> &'static str {
        if self.ascii { "*" } else { "★" }
    }

    pub fn change_mark(&self) -> &'static str {
        if self.ascii { "!" } else { "◆" }
    }

    pub fn warning_mark(&self) -> &'static str {
        if self.ascii { "!" } else { "⚠" }
    }

    pub fn healthy_mark(&self) -> &'static str {
        if self.ascii { "ok" } else { "✓" }
    }

    /// A progress bar of `width` cells.
    pub fn bar(&self, fraction: f64, width: usize) -> String {
        let fraction = fraction.clamp(0.0, 1.0);
        if self.ascii {
            let filled = (fraction * width as f64).round() as usize;
            return format!("[{}{}]", "#".repeat(filled), " ".repeat(width - filled));
        }
        const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
        let eighths = (fraction * width as f64 * 8.0).round() as usize;
        let full = eighths / 8;
        let part = if full < width { PARTS[eighths % 8] } else { "" };
        let used = full + usize::from(!part.is_empty());
        format!(
            "▕{}{}{}▏",
            "█".repeat(full),
            part,
            " ".repeat(width.saturating_sub(used))
        )
    }

    /// The whole series as a sparkline of at most `width` cells (bucket means when longer),
    /// scaled between its min and max, so the run's overall trend stays visible.
    pub fn sparkline(&self, values: &[f64], width: usize) -> String {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() || width == 0 {
            return String::new();
        }
        let cells = finite.len().min(width);
        let shown: Vec<f64> = (0..cells)
            .map(|i| {
                let bucket = &finite[i * finite.len() / cells..(i + 1) * finite.len() / cells];
                bucket.iter().sum::<f64>() / bucket.len() as f64
            })
            .collect();
        let (min, max) = shown
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let levels = self.spark_levels();
        shown
            .iter()
            .map(|&v| {
                let t = if max > min {
                    (v - min) / (max - min)
                } else {
                    0.5
                };
                levels[((t * (levels.len() - 1) as f64).round() as usize).min(levels.len() - 1)]
            })
            .collect()
    }
}
