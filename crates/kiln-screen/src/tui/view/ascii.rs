//! The ASCII fallback: one pass over the finished frame that swaps every non-ASCII glyph (box
//! drawing, blocks, braille, arrows) for a plain character, for terminals without those fonts.

use ratatui::buffer::Buffer;

pub fn fallback(buffer: &mut Buffer) {
    for cell in buffer.content.iter_mut() {
        let symbol = cell.symbol();
        if symbol.is_ascii() {
            continue;
        }
        let plain = symbol.chars().next().map_or(' ', plain_char);
        cell.set_char(plain);
    }
}

fn plain_char(c: char) -> char {
    match c {
        '─' | '━' | '═' | '╌' | '−' | '–' | '—' => '-',
        '│' | '┃' | '║' | '▕' | '▏' => '|',
        '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' | '╭' | '╮' | '╰' | '╯' => {
            '+'
        }
        '█' | '▉' | '▊' | '▋' | '▌' | '▍' | '▎' | '▀' | '▄' | '▁' | '▂' | '▃' | '▅' | '▆' | '▇' => {
            '#'
        }
        '•' | '★' => '*',
        '→' => '>',
        '←' => '<',
        '↑' => '^',
        '↓' => 'v',
        '…' | '·' => '.',
        '×' => 'x',
        '÷' => '/',
        '◆' | '⚠' => '!',
        '✓' => '+',
        '\u{2800}'..='\u{28FF}' => '.',
        _ => '?',
    }
}
