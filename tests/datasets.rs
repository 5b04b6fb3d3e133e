//! Datasets: bundled sets, image folders and CSV-labelled folders built from generated files,
//! the stratified split, augmentation and the loader thread.

use std::path::Path;
use std::sync::Arc;

use image::{Rgb, RgbImage};
use kiln::data::{self, Augmenter, Loader, LoaderPlan, Normalizer, stratified_split};
use kiln::experiment::{AugmentConfig, DataConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::{scratch, write};

/// A 12×10 picture whose colour depends on `seed`, so classes differ.
fn picture(seed: u8) -> RgbImage {
    RgbImage::from_fn(12, 10, |x, y| {
        Rgb([seed.wrapping_mul(40), (x * 20) as u8, (y * 25) as u8 ^ seed])
    })
}

fn image_folder_config(root: &Path) -> DataConfig {
    DataConfig {
        dataset: root.display().to_string(),
        image_size: Some(8),
        ..DataConfig::default()
    }
}

#[test]
fn bundled_sets_have_their_documented_sizes() {
    let digits = data::load(&DataConfig::default()).unwrap();
    assert_eq!(digits.len(), 1797);
    assert_eq!((digits.channels, digits.height, digits.width), (1, 8, 8));
    assert_eq!(digits.classes.len(), 10);
    let mut counts = [0usize; 10];
    for &label in &digits.labels {
        counts[label] += 1;
    }
    assert!(
        counts.iter().all(|&c| (174..=183).contains(&c)),
        "{counts:?}"
    );
    // Pixel values 0..16 are scaled to the full byte range.
    assert_eq!(digits.pixels.iter().max(), Some(&255));

    let mnist = data::load(&DataConfig {
        dataset: "mnist-5k".into(),
        ..DataConfig::default()
    })
    .unwrap();
    assert_eq!(mnist.len(), 5000);
    assert_eq!((mnist.height, mnist.width), (28, 28));
}

#[test]
fn bundled_set_resizes_and_repeats_channels() {
    let config = DataConfig {
        image_size: Some(16),
        channels: Some(3),
        ..DataConfig::default()
    };
    let digits = data::load(&config).unwrap();
    assert_eq!((digits.channels, digits.height, digits.width), (3, 16, 16));
    let first = digits.image(0);
    assert_eq!(first.len(), 3 * 16 * 16);
    assert_eq!(
        first[..256],
        first[256..512],
        "grey repeated in every channel"
    );
}

#[test]
fn image_folder_skips_and_counts_corrupt_files() {
    let root = scratch("folder");
    for (class, seed) in [("cars", 1u8), ("trucks", 2)] {
        for i in 0..3u8 {
            let dir = root.join(class);
            std::fs::create_dir_all(&dir).unwrap();
            picture(seed + i)
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
    picture(9).save(root.join("trucks/extra.jpg")).unwrap();
    write(&root.join("cars/broken.png"), "this is not a PNG");
    write(
        &root.join("cars/notes.txt"),
        "ignored: not an image extension",
    );

    let dataset = data::load(&image_folder_config(&root)).unwrap();
    assert_eq!(dataset.classes, vec!["cars", "trucks"]);
    assert_eq!(dataset.len(), 7);
    assert_eq!(dataset.labels.iter().filter(|&&l| l == 1).count(), 4);
    assert_eq!(dataset.skipped, vec!["cars/broken.png".to_string()]);
    assert_eq!((dataset.channels, dataset.height, dataset.width), (3, 8, 8));
    let summary = dataset.skipped_summary().unwrap();
    assert!(
        summary.contains("skipped 1 unreadable image: cars/broken.png"),
        "{summary}"
    );

    let grey = data::load(&DataConfig {
        channels: Some(1),
        ..image_folder_config(&root)
    })
    .unwrap();
    assert_eq!(grey.image_len(), 64);
}

#[test]
fn class_with_only_unreadable_files_is_an_error() {
    let root = scratch("empty-class");
    std::fs::create_dir_all(root.join("good")).unwrap();
    picture(1).save(root.join("good/a.png")).unwrap();
    write(&root.join("bad/a.png"), "garbage");
    let err = data::load(&image_folder_config(&root))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class \"bad\" has no readable images"),
        "{err}"
    );
}

#[test]
fn empty_class_folder_is_an_error() {
    let root = scratch("empty-folder");
    std::fs::create_dir_all(root.join("good")).unwrap();
    std::fs::create_dir_all(root.join("nothing")).unwrap();
    picture(1).save(root.join("good/a.png")).unwrap();
    let err = data::load(&image_folder_config(&root))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class \"nothing\" has no readable images"),
        "{err}"
    );
}

#[test]
fn folder_without_images_is_an_error() {
    let root = scratch("no-images");
    let err = data::load(&image_folder_config(&root))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no images found"), "{err}");
}

fn csv_dataset(rows: &str) -> (std::path::PathBuf, DataConfig) {
    let root = scratch("csv");
    std::fs::create_dir_all(root.join("images")).unwrap();
    for i in 0..4u8 {
        picture(i)
            .save(root.join(format!("images/{i}.jpg")))
            .unwrap();
    }
    write(&root.join("images/corrupt.jpg"), "not a jpeg");
    write(&root.join("train.csv"), rows);
    let config = DataConfig {
        csv: Some("train.csv".into()),
        image_column: "image_names".into(),
        label_column: "emergency_or_not".into(),
        ..image_folder_config(&root)
    };
    (root, config)
}

#[test]
fn csv_labelled_folder_in_the_case_study_layout() {
    let (_root, config) = csv_dataset(
        "image_names,emergency_or_not\n0.jpg,0\n1.jpg,1\n2.jpg,0\n3.jpg,1\ncorrupt.jpg,1\n",
    );
    let dataset = data::load(&config).unwrap();
    assert_eq!(dataset.classes, vec!["0", "1"]);
    assert_eq!(dataset.labels, vec![0, 1, 0, 1]);
    assert_eq!(dataset.skipped, vec!["images/corrupt.jpg".to_string()]);
}

#[test]
fn csv_naming_missing_files_is_an_error() {
    let (_root, config) = csv_dataset("image_names,emergency_or_not\n0.jpg,0\nghost.jpg,1\n");
    let err = data::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("train.csv names 1 image(s) that do not exist"),
        "{err}"
    );
    assert!(err.contains("ghost.jpg"), "{err}");
}

#[test]
fn csv_with_an_empty_label_names_the_line() {
    let (_root, config) = csv_dataset("image_names,emergency_or_not\n0.jpg,0\n1.jpg,\n");
    let err = data::load(&config).unwrap_err().to_string();
    assert!(err.contains("train.csv: line 3: empty label"), "{err}");
}

#[test]
fn csv_with_a_missing_column_lists_the_columns() {
    let (_root, config) = csv_dataset("file,label\n0.jpg,0\n");
    let err = data::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("no column \"image_names\" (columns: file, label)"),
        "{err}"
    );
    assert!(err.contains("data.image_column"), "{err}");
}

#[test]
fn split_is_stratified_disjoint_and_seeded() {
    let labels: Vec<usize> = (0..1000).map(|i| i % 4).collect();
    let split = stratified_split(&labels, 4, 0.2, None, 42);
    assert_eq!(split.validation.len(), 200);
    assert_eq!(split.train.len(), 800);
    for class in 0..4 {
        let in_val = split
            .validation
            .iter()
            .filter(|&&i| labels[i] == class)
            .count();
        assert_eq!(in_val, 50, "class {class}");
    }
    let mut all: Vec<usize> = split
        .train
        .iter()
        .chain(&split.validation)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());

    assert_eq!(split, stratified_split(&labels, 4, 0.2, None, 42));
    assert_ne!(split, stratified_split(&labels, 4, 0.2, None, 43));

    let capped = stratified_split(&labels, 4, 0.2, Some(100), 42);
    assert_eq!(capped.train.len(), 100);
    assert_eq!(
        capped.validation, split.validation,
        "the cap leaves validation alone"
    );
    for class in 0..4 {
        let n = capped.train.iter().filter(|&&i| labels[i] == class).count();
        assert_eq!(n, 25, "class {class} keeps its share");
    }
}

/// Over 16 seeds, an 8×8 `image` comes out either untouched or exactly `flipped`, and both happen.
fn assert_flips_exactly(config: AugmentConfig, image: &[u8], flipped: &[u8]) {
    let augmenter = Augmenter::new(config, 8, 8);
    let mut saw_flip = false;
    for seed in 0..16 {
        let out = augmenter.apply(image, &mut ChaCha8Rng::seed_from_u64(seed));
        assert!(out == image || out == flipped, "seed {seed}: {out:?}");
        saw_flip |= out == flipped;
    }
    assert!(saw_flip, "a 50% flip never happened in 16 tries");
}

#[test]
fn augmentation_is_seeded_and_flips_mirror_exactly() {
    let image: Vec<u8> = (0..64u8).map(|v| v * 3).collect();
    let rich = Augmenter::new(
        AugmentConfig {
            rotation: 20.0,
            shear: 10.0,
            shift: 0.1,
            zoom: 0.1,
            ..AugmentConfig::default()
        },
        8,
        8,
    );
    let a = rich.apply(&image, &mut ChaCha8Rng::seed_from_u64(5));
    let b = rich.apply(&image, &mut ChaCha8Rng::seed_from_u64(5));
    let c = rich.apply(&image, &mut ChaCha8Rng::seed_from_u64(6));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, image);

    let mirrored: Vec<u8> = image
        .chunks(8)
        .flat_map(|row| row.iter().rev().copied().collect::<Vec<_>>())
        .collect();
    let horizontal = AugmentConfig {
        horizontal_flip: true,
        ..AugmentConfig::default()
    };
    assert_flips_exactly(horizontal, &image, &mirrored);
    let upside_down: Vec<u8> = image.chunks(8).rev().flatten().copied().collect();
    let vertical = AugmentConfig {
        vertical_flip: true,
        ..AugmentConfig::default()
    };
    assert_flips_exactly(vertical, &image, &upside_down);
    assert!(!Augmenter::new(AugmentConfig::default(), 8, 8).is_active());
}

#[test]
fn warps_turn_about_the_centre_and_keep_flat_regions_flat() {
    // A 9x9 three-channel image, flat in each channel except the centre pixel.
    let (side, plane) = (9usize, 81usize);
    let mut image = Vec::new();
    for level in [40u8, 120, 200] {
        let mut channel = vec![level; plane];
        channel[4 * side + 4] = level + 50;
        image.extend(channel);
    }
    let turn = Augmenter::new(
        AugmentConfig {
            rotation: 30.0,
            shear: 10.0,
            zoom: 0.1,
            ..AugmentConfig::default()
        },
        side,
        side,
    );
    for seed in 0..8 {
        let out = turn.apply(&image, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(out.len(), image.len());
        for (c, level) in [40u8, 120, 200].into_iter().enumerate() {
            let channel = &out[c * plane..(c + 1) * plane];
            // Rotation, shear and zoom are about the centre: it stays where it was.
            assert_eq!(channel[4 * side + 4], level + 50, "seed {seed}");
            // Away from the centre and the corners, a flat region stays flat.
            assert_eq!(channel[4 * side + 1], level, "seed {seed}, channel {c}");
            assert_eq!(channel[side + 4], level, "seed {seed}, channel {c}");
        }
    }
}

#[test]
fn normalised_augmentation_matches_the_byte_image_normalised() {
    // The loader's fused path must be the same transform as `apply`, short of the rounding to
    // whole bytes that it skips.
    let (side, plane) = (12usize, 144usize);
    let image: Vec<u8> = (0..3 * plane).map(|i| (i * 37 % 251) as u8).collect();
    let normalizer = Normalizer {
        mean: vec![0.2, 0.5, 0.7],
        std: vec![0.1, 0.25, 0.3],
    };
    let augmenter = Augmenter::new(
        AugmentConfig {
            rotation: 25.0,
            shear: 8.0,
            shift: 0.1,
            zoom: 0.15,
            horizontal_flip: true,
            vertical_flip: true,
        },
        side,
        side,
    );
    for seed in 0..12 {
        let bytes = augmenter.apply(&image, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut expected = vec![0f32; image.len()];
        normalizer.write(&bytes, &mut expected);
        let mut fused = vec![f32::NAN; image.len()];
        augmenter.apply_normalised(
            &image,
            &mut ChaCha8Rng::seed_from_u64(seed),
            &normalizer,
            &mut fused,
        );
        for (i, (e, f)) in expected.iter().zip(&fused).enumerate() {
            let half_byte = 0.5 / 255.0 / normalizer.std[i / plane] + 1e-4;
            assert!(
                (e - f).abs() <= half_byte,
                "seed {seed}, value {i}: {e} vs {f}"
            );
        }
    }
}

#[test]
fn loader_covers_each_training_image_once_per_epoch() {
    let dataset = Arc::new(data::load(&DataConfig::default()).unwrap());
    let train: Vec<usize> = (0..100).collect();
    let plan = LoaderPlan {
        train: train.clone(),
        batch_size: 32,
        seed: 1,
        first_epoch: 1,
        skip_batches: 0,
        last_epoch: 2,
        normalizer: Normalizer::fit(&dataset, &train),
        augmenter: Augmenter::new(AugmentConfig::default(), 8, 8),
        sampler: Default::default(),
    };
    assert_eq!(plan.batches_per_epoch(), 4);
    let loader = Loader::spawn(dataset.clone(), plan.clone()).unwrap();
    let batches: Vec<_> = loader.batches.iter().collect();
    assert_eq!(batches.len(), 8);
    assert_eq!(
        batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![32, 32, 32, 4, 32, 32, 32, 4]
    );
    for epoch in 1..=2 {
        let mut labels: Vec<i64> = batches
            .iter()
            .filter(|b| b.epoch == epoch)
            .flat_map(|b| b.labels.clone())
            .collect();
        labels.sort_unstable();
        let mut expected: Vec<i64> = train.iter().map(|&i| dataset.labels[i] as i64).collect();
        expected.sort_unstable();
        assert_eq!(labels, expected, "epoch {epoch}");
    }
    // Epochs are shuffled differently, and the same seed repeats the same order.
    assert_ne!(batches[0].labels, batches[4].labels);
    let again: Vec<_> = Loader::spawn(dataset, plan)
        .unwrap()
        .batches
        .iter()
        .collect();
    assert_eq!(again[0].labels, batches[0].labels);
    assert_eq!(again[0].images, batches[0].images);
}

#[test]
fn normalised_training_images_have_zero_mean_and_unit_spread() {
    let dataset = data::load(&DataConfig::default()).unwrap();
    let all: Vec<usize> = (0..dataset.len()).collect();
    let normalizer = Normalizer::fit(&dataset, &all);
    let values = normalizer.images(&dataset, &all);
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 1e-3, "mean {mean}");
    assert!((var - 1.0).abs() < 1e-2, "variance {var}");
}
