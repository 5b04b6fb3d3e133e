//! Timings of kiln's own parts, apart from training: what monitoring adds to a step, one frame
//! of the live screen, and the loader's sustained rate.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::median;
use crate::data::Normalizer;
use crate::monitor::RunView;
use crate::protocol::EventKind;
use crate::train;

/// What kiln's monitoring adds to one training step, in seconds: one batch event serialised,
/// appended and flushed to a real event log, published to one attached viewer and sent to a
/// front end that applies it (the median over `events`). Timed apart from training, so
/// the figure is stable where the two loops' ratio is noisy.
pub fn monitoring_seconds_per_batch(dir: &Path, events: usize) -> Result<f64, String> {
    use crate::protocol::{BatchProgress, EventKind};
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let log =
        crate::runs::EventLog::create(&dir.join("monitoring.jsonl")).map_err(|e| e.to_string())?;
    let (sender, receiver) = crossbeam_channel::unbounded();
    let hub = crate::control::server::Hub::new(0);
    // One attached viewer, as `kiln attach` would be: each line is queued for it, and a
    // thread takes them off as the socket's writer would.
    let (_, lines) = hub.subscribe();
    let viewer = std::thread::spawn(move || lines.iter().map(|line| line.len()).sum::<usize>());
    let mut sink = train::EventSink::new(log, sender, hub);
    // The front end's share runs on its own thread; it is timed there and added.
    let front_end = std::thread::spawn(move || {
        let mut view = RunView::default();
        let mut samples = Vec::new();
        for event in receiver.iter() {
            let started = Instant::now();
            view.apply(&event);
            samples.push(started.elapsed().as_secs_f64());
        }
        samples
    });
    let mut samples = Vec::with_capacity(events);
    for i in 0..events {
        let started = Instant::now();
        sink.emit(
            Some(1),
            Some(i as u64),
            EventKind::Batch(BatchProgress {
                batch: i + 1,
                batches: events,
                loss: 1.0 / (i + 1) as f64,
                images_per_second: 1000.0,
            }),
        );
        samples.push(started.elapsed().as_secs_f64());
    }
    drop(sink);
    let applied = front_end
        .join()
        .map_err(|_| "the front-end thread panicked".to_string())?;
    let viewed = viewer
        .join()
        .map_err(|_| "the viewer thread panicked".to_string())?;
    if viewed == 0 {
        return Err("the viewer received no events".into());
    }
    Ok(median(samples) + median(applied))
}

/// The events of a plausible finished-looking run: `epochs` epochs of `batches` batches with
/// falling losses and rising accuracies (for timing the screen and the run store).
pub fn synthetic_run(epochs: usize, batches: usize) -> Vec<crate::protocol::Event> {
    use crate::protocol::{
        BackendSummary, BatchProgress, DatasetSummary, EpochMetrics, Event, RunStarted,
    };
    let at = |epoch: Option<usize>, step: u64, kind| Event {
        time: "2026-11-27T12:00:00.000Z".into(),
        epoch,
        step: Some(step),
        kind,
    };
    let start = RunStarted {
        run_id: "bench".into(),
        experiment: "bench".into(),
        dataset: DatasetSummary {
            name: "mnist-5k".into(),
            classes: (0..10).map(|c| c.to_string()).collect(),
            train_images: 1000,
            validation_images: 1000,
            channels: 1,
            height: 28,
            width: 28,
            skipped: 0,
        },
        backend: BackendSummary {
            name: "flex".into(),
            device: "CPU".into(),
            reason: "bench".into(),
            ..Default::default()
        },
        epochs,
        batches_per_epoch: batches,
        batch_size: 32,
        learning_rate: 1e-3,
        dropout: 0.0,
        batch_norm: false,
        augmentation: false,
        parameters: 206_922,
        gap_threshold: 0.05,
        patience: 3,
        parent: None,
        placement: None,
        schedule: None,
        early_stopping: None,
        controls: Vec::new(),
        backbone: None,
        backbone_parameters: None,
        backbone_frozen: false,
    };
    let mut events = vec![at(None, 0, EventKind::RunStarted(Box::new(start)))];
    let mut step = 0;
    for epoch in 1..=epochs {
        for batch in 1..=batches {
            step += 1;
            let kind = EventKind::Batch(BatchProgress {
                batch,
                batches,
                loss: 1.0 / step as f64,
                images_per_second: 1500.0,
            });
            events.push(at(Some(epoch), step, kind));
        }
        let acc = 1.0 - 1.0 / (epoch as f64 + 1.0);
        let kind = EventKind::Epoch(EpochMetrics {
            train_loss: 1.0 / epoch as f64,
            train_accuracy: acc,
            validation_loss: 1.1 / epoch as f64,
            validation_accuracy: acc * 0.95,
            learning_rate: 1e-3,
            dropout: 0.0,
            seconds: 1.0,
            images_per_second: 1000.0,
            classes: None,
        });
        events.push(at(Some(epoch), step, kind));
    }
    events
}

/// Mean milliseconds to draw one frame of the live screen (`width`×`height`) holding `epochs`
/// epochs of history, batch losses included.
pub fn frame_milliseconds(epochs: usize, width: u16, height: u16, frames: usize) -> f64 {
    use crate::tui::app::{App, Message, update};
    let mut app = App::live();
    for event in synthetic_run(epochs, 32) {
        update(&mut app, Message::Trainer(event));
    }
    let ui = crate::tui::Ui::new(app);
    let theme = crate::tui::theme::Theme::default();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .expect("test backend");
    let started = Instant::now();
    for _ in 0..frames {
        let _ = terminal.draw(|frame| crate::tui::view::draw(frame, &ui, &theme));
    }
    started.elapsed().as_secs_f64() * 1e3 / frames.max(1) as f64
}

/// What the data path sustains on an image folder of `side`-pixel RGB JPEG files.
#[derive(Debug, Clone, Copy)]
pub struct LoaderRates {
    /// Reading and decoding the folder (kiln does it once, before the first epoch), img/s.
    pub decode: f64,
    /// The loader thread's batches from the decoded images (shuffle, augmentation,
    /// normalisation), every epoch, img/s.
    pub batches: f64,
}

/// The data path's rates on a folder of `images` `side`-pixel RGB JPEGs, batches of `batch`.
pub fn loader_images_per_second(
    side: usize,
    images: usize,
    batch: usize,
    dir: &Path,
) -> Result<LoaderRates, String> {
    use crate::data::{Augmenter, Loader, LoaderPlan};
    use crate::experiment::{AugmentConfig, DataConfig};
    let root = dir.join("jpegs");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).map_err(|e| e.to_string())?;
        for i in 0..images / 2 {
            let picture = image::RgbImage::from_fn(side as u32, side as u32, |x, y| {
                image::Rgb([(x ^ y) as u8, rng.random(), (x + y) as u8])
            });
            picture
                .save(root.join(class).join(format!("{i}.jpg")))
                .map_err(|e| e.to_string())?;
        }
    }
    let decoding = Instant::now();
    let dataset = Arc::new(
        crate::data::load(&DataConfig {
            dataset: root.display().to_string(),
            image_size: Some(side),
            channels: Some(3),
            ..DataConfig::default()
        })
        .map_err(|e| e.to_string())?,
    );
    let decode = dataset.len() as f64 / decoding.elapsed().as_secs_f64().max(1e-9);
    let train: Vec<usize> = (0..dataset.len()).collect();
    let plan = LoaderPlan {
        normalizer: Normalizer::fit(&dataset, &train),
        train,
        batch_size: batch,
        seed: 1,
        first_epoch: 1,
        skip_batches: 0,
        last_epoch: 3,
        sampler: Default::default(),
        augmenter: Augmenter::new(
            AugmentConfig {
                rotation: 15.0,
                shear: 5.0,
                shift: 0.05,
                zoom: 0.1,
                horizontal_flip: true,
                vertical_flip: false,
            },
            side,
            side,
        ),
    };
    let started = Instant::now();
    let loader = Loader::spawn(dataset, plan).map_err(|e| e.to_string())?;
    let produced: usize = loader.batches.iter().map(|b| b.len()).sum();
    Ok(LoaderRates {
        decode,
        batches: produced as f64 / started.elapsed().as_secs_f64().max(1e-9),
    })
}
