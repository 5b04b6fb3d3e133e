//! Whole-screen snapshots (insta on ratatui's TestBackend) from scripted runs.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::render::{render_ui, text};
use crate::script::{OVERFITTING, Script};
use kiln_core::protocol::{HyperParameter, Outcome};
use kiln_screen::tui::app::{Action, App, Message, update};
use kiln_screen::tui::theme::Theme;
use kiln_screen::tui::{Ui, view};

fn app_after(script: Script) -> App {
    let mut app = App::new();
    for event in script.events {
        update(&mut app, Message::Trainer(event));
    }
    app
}

pub fn render_with(app: &App, width: u16, height: u16, theme: Theme) -> String {
    render_ui(&Ui::new(app.clone()), width, height, theme)
}

fn render(app: &App, width: u16, height: u16) -> String {
    render_with(app, width, height, Theme::default())
}

fn early() -> Script {
    Script::new(20).started().epochs(&[(0.70, 0.68)]).batches(2)
}

fn overfitting() -> Script {
    Script::new(20).started().epochs(&OVERFITTING).batches(1)
}

fn with_change() -> Script {
    Script::new(20)
        .started()
        .epochs(&[(0.80, 0.79), (0.90, 0.84)])
        .change(HyperParameter::Dropout, 0.0, 0.3)
        .epochs(&[(0.92, 0.86), (0.93, 0.87)])
        .change(HyperParameter::LearningRate, 1e-3, 5e-4)
        .warning("skipped 2 unreadable images: cars/a.png, cars/b.png")
        .epochs(&[(0.94, 0.88)])
}

#[test]
fn early_run() {
    let app = app_after(early());
    insta::assert_snapshot!("early_80x24", render(&app, 80, 24));
    insta::assert_snapshot!("early_120x40", render(&app, 120, 40));
}

#[test]
fn overfitting_warning() {
    let app = app_after(overfitting());
    let screen = render(&app, 80, 24);
    assert!(screen.contains("⚠ overfitting"), "{screen}");
    insta::assert_snapshot!("overfitting_80x24", screen);
    insta::assert_snapshot!("overfitting_120x40", render(&app, 120, 40));
}

#[test]
fn paused() {
    let mut app = app_after(early());
    update(&mut app, Message::Action(Action::TogglePause));
    for event in early()
        .paused()
        .events
        .into_iter()
        .skip(early().events.len())
    {
        update(&mut app, Message::Trainer(event));
    }
    let screen = render(&app, 80, 24);
    assert!(screen.contains("PAUSED"), "{screen}");
    insta::assert_snapshot!("paused_80x24", screen);
    insta::assert_snapshot!("paused_120x40", render(&app, 120, 40));
}

#[test]
fn finished() {
    let app = app_after(overfitting().finished(Outcome::Completed, 5));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("FINISHED"), "{screen}");
    insta::assert_snapshot!("finished_80x24", screen);
    insta::assert_snapshot!("finished_120x40", render(&app, 120, 40));
}

#[test]
fn hyper_parameter_change_markers() {
    let app = app_after(with_change());
    let screen = render(&app, 120, 40);
    assert!(screen.contains("dropout 0.00 → 0.30"), "{screen}");
    insta::assert_snapshot!("change_marker_120x40", screen);
    insta::assert_snapshot!("change_marker_80x24", render(&app, 80, 24));
    let mut chart = app.clone();
    update(&mut chart, Message::Action(Action::ToggleChart));
    insta::assert_snapshot!("change_marker_chart_120x40", render(&chart, 120, 40));
    // `z` twice: the full range, then the loss on a log scale.
    update(&mut chart, Message::Action(Action::ToggleRange));
    let full = render(&chart, 120, 40);
    assert!(full.contains("z: log loss"), "{full}");
    update(&mut chart, Message::Action(Action::ToggleRange));
    let log = render(&chart, 120, 40);
    assert!(
        log.contains("loss, log scale") && log.contains("z: data range"),
        "{log}"
    );
    insta::assert_snapshot!("change_marker_chart_log_120x40", log);
}

#[test]
fn too_small_terminal_says_so() {
    let app = app_after(early());
    let screen = render(&app, 50, 12);
    assert!(screen.contains("terminal too small: 50×12"), "{screen}");
    insta::assert_snapshot!("too_small_50x12", screen);
    // Degenerate sizes draw nothing and do not panic.
    render(&app, 1, 1);
    render(&app, 0, 0);
}

#[test]
fn help_overlay_and_prompt() {
    let mut app = app_after(early());
    update(&mut app, Message::Action(Action::ToggleHelp));
    insta::assert_snapshot!("help_80x24", render(&app, 80, 24));
    update(&mut app, Message::Action(Action::Cancel));
    update(&mut app, Message::Action(Action::EditValue));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("set dropout: 0.00_"), "{screen}");
}

#[test]
fn ascii_mode_uses_no_block_or_braille_glyphs() {
    let app = app_after(with_change());
    let theme = Theme {
        color: false,
        ascii: true,
        ..Theme::default()
    };
    let mut screens = render_with(&app, 100, 30, theme);
    let mut chart = app.clone();
    update(&mut chart, Message::Action(Action::ToggleChart));
    screens.push_str(&render_with(&chart, 100, 30, theme));
    let fancy: Vec<char> = screens.chars().filter(|c| !c.is_ascii()).collect();
    assert!(fancy.is_empty(), "found {fancy:?} in\n{screens}");
    assert!(screens.contains("dropout 0.00 > 0.30"), "{screens}");
    insta::assert_snapshot!("ascii_100x30", screens);
}

#[test]
fn key_styles_carry_meaning_in_colour_and_not_under_no_color() {
    use ratatui::style::Color;
    let ui = Ui::new(app_after(overfitting()));
    let cell_colour = |theme: Theme, needle: &str| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| view::draw(f, &ui, &theme)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let screen = text(&buffer);
        let line = screen.lines().position(|l| l.contains(needle)).unwrap();
        let column = screen
            .lines()
            .nth(line)
            .unwrap()
            .chars()
            .position(|c| c == needle.chars().next().unwrap())
            .unwrap();
        buffer[(column as u16, line as u16)].fg
    };
    assert_eq!(
        cell_colour(Theme::default(), "⚠ overfitting"),
        Color::Yellow
    );
    assert_eq!(cell_colour(Theme::default(), "RUNNING"), Color::Green);
    let plain = Theme {
        color: false,
        ascii: false,
        ..Theme::default()
    };
    assert_eq!(cell_colour(plain, "⚠ overfitting"), Color::Reset);
}

#[test]
fn a_long_notice_is_wrapped_inside_the_activity_box_not_cut() {
    let mut app = app_after(overfitting());
    let file = "experiments/baseline-augment.toml";
    app.report(
        format!("wrote {file}: start it with kiln train {file}"),
        true,
    );
    for (width, height) in [(80, 24), (60, 18)] {
        let screen = render(&app, width, height);
        assert_eq!(
            screen.matches(file).count(),
            2,
            "the whole message, the command to type included, at {width}x{height}:\n{screen}"
        );
        assert!(screen.contains("kiln train"), "{screen}");
    }
    // A short one stays on the box's bottom border, as before.
    app.report("paused at step 12", true);
    let screen = render(&app, 80, 24);
    let line = screen
        .lines()
        .find(|l| l.contains("paused at step 12"))
        .unwrap();
    assert!(line.starts_with('└'), "{line}");
}

/// A 10-class confusion matrix where 8s are often read as 1s and 9s as 3s or 4s.
fn digits_matrix() -> Vec<u64> {
    let mut matrix = vec![0u64; 100];
    for c in 0..10 {
        matrix[c * 10 + c] = 95;
    }
    matrix[8 * 10 + 8] = 70;
    matrix[8 * 10 + 1] = 25;
    matrix[9 * 10 + 9] = 88;
    matrix[9 * 10 + 3] = 4;
    matrix[9 * 10 + 4] = 3;
    matrix[2 * 10 + 7] = 1;
    matrix
}

#[test]
fn per_class_view_for_ten_and_two_classes() {
    let mut app = app_after(overfitting().class_counts(&digits_matrix(), 10));
    update(&mut app, Message::Action(Action::ToggleClasses));
    let screen = render(&app, 80, 24);
    // Worst recall first: class 8 heads the table; the matrix shows its 25 images read as 1.
    let first_row = screen
        .lines()
        .find(|l| l.contains("│8 "))
        .unwrap_or_default();
    assert!(first_row.contains("0.737"), "{screen}");
    assert!(screen.contains("confusion (rows: true)"), "{screen}");
    insta::assert_snapshot!("classes_10_80x24", screen);
    let ascii = Theme {
        color: false,
        ascii: true,
        ..Theme::default()
    };
    insta::assert_snapshot!("classes_10_80x24_ascii", render_with(&app, 80, 24, ascii));

    let names = vec!["emergency".to_string(), "non-emergency".to_string()];
    let script = Script::new(10)
        .started_with_classes(names)
        .epochs(&[(0.9, 0.8)])
        .class_counts(&[120, 30, 10, 170], 2);
    let mut app = app_after(script);
    update(&mut app, Message::Action(Action::ToggleClasses));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("emergency"), "{screen}");
    insta::assert_snapshot!("classes_2_80x24", screen);
}

#[test]
fn per_class_view_colours_the_confusions_and_not_under_no_color() {
    use ratatui::style::Color;
    let mut app = app_after(overfitting().class_counts(&digits_matrix(), 10));
    update(&mut app, Message::Action(Action::ToggleClasses));
    let ui = Ui::new(app);
    let colour_of = |theme: Theme, needle: &str| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|f| view::draw(f, &ui, &theme)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let screen = text(&buffer);
        let (line, column) = screen
            .lines()
            .enumerate()
            .find_map(|(i, l)| {
                let at = l.find(needle)?;
                // Skip the table: the matrix is on the right.
                (l[..at].chars().count() > 40).then(|| (i, l[..at].chars().count()))
            })
            .unwrap_or_else(|| panic!("{needle} not in the matrix: {screen}"));
        buffer[(
            column as u16 + needle.chars().count() as u16 - 1,
            line as u16,
        )]
            .fg
    };
    // 25 of class 8's 95 images read as 1: red; the diagonal green.
    assert_eq!(colour_of(Theme::default(), " 25"), Color::Red);
    assert_eq!(colour_of(Theme::default(), " 70"), Color::Green);
    let plain = Theme {
        color: false,
        ascii: false,
        ..Theme::default()
    };
    assert_eq!(colour_of(plain, " 25"), Color::Reset);
}

/// A gallery of `n` tiles: a bright diagonal on black, captioned.
fn gallery_app(n: usize) -> App {
    use kiln_core::gallery::{Kind, Pictures, Tile};
    let mut app = app_after(overfitting());
    update(&mut app, Message::Action(Action::ShowMistakes));
    let request = app.gallery.as_ref().unwrap().request;
    let tiles: Vec<Tile> = (0..n)
        .map(|i| Tile {
            image: image::RgbImage::from_fn(28, 28, |x, y| {
                let v = if x == y || x + y == 27 { 255 } else { 0 };
                image::Rgb([v, v / 2, 0])
            }),
            caption: format!("{} → {} 0.{:02}", i % 10, (i + 1) % 10, 99 - i),
        })
        .collect();
    let encoded = kiln_screen::tui::pictures::encode_all(&tiles);
    let pictures = Pictures {
        tiles,
        epoch: Some(5),
        note: None,
    };
    update(
        &mut app,
        Message::Gallery {
            request,
            result: Ok((pictures, encoded)),
        },
    );
    assert_eq!(app.gallery.as_ref().unwrap().kind, Kind::Mistakes);
    app
}

#[test]
fn the_image_view_draws_captioned_pictures_in_half_blocks_or_lists_them() {
    let app = gallery_app(12);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("mistakes after epoch 5, most confident first"),
        "{screen}"
    );
    assert!(screen.contains("0 → 1 0.99"), "{screen}");
    assert!(screen.contains('▀') || screen.contains('▄'), "{screen}");
    insta::assert_snapshot!("images_80x24", screen);
    insta::assert_snapshot!("images_120x40", render(&app, 120, 40));
    // Without pictures (--ascii, NO_COLOR, --images off): the captions as a list.
    let text = Theme {
        color: false,
        ascii: true,
        pictures: false,
        ..Theme::default()
    };
    let listed = render_with(&app, 80, 24, text);
    assert!(
        !listed.contains('▀') && listed.contains("3 > 4 0.96"),
        "{listed}"
    );
    insta::assert_snapshot!("images_list_80x24", listed);
    // Too little room for one picture says so.
    let small = render(&app, 60, 18);
    assert!(
        small.contains("terminal too small for the pictures"),
        "{small}"
    );
}

#[test]
fn the_image_view_pages_and_ignores_a_stale_gallery() {
    let mut app = gallery_app(12);
    update(&mut app, Message::Action(Action::ScrollDown));
    assert_eq!(app.gallery.as_ref().unwrap().first, 4);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("from 5 of 12") && screen.contains("4 → 5 0.95"),
        "{screen}"
    );
    update(&mut app, Message::Action(Action::ScrollUp));
    assert_eq!(app.gallery.as_ref().unwrap().first, 0);
    // `a` asks for new pictures; a result for the earlier request is dropped.
    let effects = update(&mut app, Message::Action(Action::ShowAugmented));
    let request = app.gallery.as_ref().unwrap().request;
    assert!(matches!(
        effects.as_slice(),
        [kiln_screen::tui::app::Effect::LoadGallery { kind: kiln_core::gallery::Kind::Augmented, request: r }] if *r == request
    ));
    update(
        &mut app,
        Message::Gallery {
            request: request - 1,
            result: Err("stale".into()),
        },
    );
    assert_eq!(app.gallery.as_ref().unwrap().content, None);
    assert!(render(&app, 80, 24).contains("drawing augmented samples"));
}

#[test]
fn the_header_shows_the_machine_gpu_first_and_a_starved_trainer() {
    use kiln_core::protocol::{EventKind, GpuSample, MachineSample};
    let mut app = app_after(early());
    let before = render(&app, 140, 30);
    assert!(!before.contains("CPU "), "no sample yet: {before}");
    let sample = MachineSample {
        cpu_percent: 185.4,
        memory_mb: 310.2,
        loader_wait: 0.35,
        gpu: Some(GpuSample {
            name: "NVIDIA H200".into(),
            utilization_percent: 97,
            memory_used_mb: 12.3 * 1024.0,
            memory_total_mb: 140.0 * 1024.0,
            temperature_c: 61,
        }),
    };
    update(
        &mut app,
        Message::Trainer(kiln_core::here::event(
            Some(1),
            Some(3),
            EventKind::Machine(sample.clone()),
        )),
    );
    let screen = render(&app, 140, 30);
    let about = screen.lines().nth(2).unwrap();
    assert!(
        about.contains("GPU 97% 12.3/140.0 GB 61°C · CPU 185% 310 MB · loader-bound 35%"),
        "{screen}"
    );
    // A trainer that rarely waits is not called loader-bound; without a GPU none is shown.
    let calm = MachineSample {
        loader_wait: 0.02,
        gpu: None,
        ..sample
    };
    update(
        &mut app,
        Message::Trainer(kiln_core::here::event(
            Some(1),
            Some(4),
            EventKind::Machine(calm),
        )),
    );
    let screen = render(&app, 140, 30);
    let about = screen.lines().nth(2).unwrap();
    assert!(about.contains("CPU 185% 310 MB"), "{screen}");
    assert!(
        !about.contains("GPU") && !about.contains("loader-bound"),
        "{screen}"
    );
}
