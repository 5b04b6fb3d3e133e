//! `kiln augment-preview`: the grid's size and cells, and that it shows what the loader feeds.

use kiln::augment_preview::{GridLayout, pick};
use kiln::experiment::Experiment;

use crate::common::{repo_path, scratch};

fn preview(experiment: &str, out: &std::path::Path, seed: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "augment-preview",
            experiment,
            "--n",
            "4",
            "--draws",
            "3",
            "--seed",
            seed,
        ])
        .arg("--out")
        .arg(out)
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The cell's pixels, one per image pixel (the top-left of each scaled-up block), grey.
fn cell(png: &image::RgbImage, layout: &GridLayout, row: u32, column: u32) -> Vec<u8> {
    let (x0, y0) = layout.origin(row, column);
    let side = layout.cell / layout.scale;
    (0..side)
        .flat_map(|y| (0..side).map(move |x| (x, y)))
        .map(|(x, y)| png.get_pixel(x0 + x * layout.scale, y0 + y * layout.scale)[0])
        .collect()
}

#[test]
fn the_grid_has_its_cells_the_originals_and_the_draws() {
    let dir = scratch("preview");
    let out = dir.join("augment.png");
    let stdout = preview("experiments/augment.toml", &out, "7");
    let layout = GridLayout::new(28, 4, 3);
    let png = image::open(&out).unwrap().to_rgb8();
    assert_eq!(
        (png.width(), png.height()),
        (layout.width, layout.height),
        "{stdout}"
    );

    // Column 0 holds the training images `pick` chooses (one per class), pixel for pixel.
    let experiment = Experiment::load(&repo_path("experiments/augment.toml"), &[]).unwrap();
    let dataset = kiln::data::load(&experiment.data).unwrap();
    let split = kiln::train::split(&dataset, &experiment).unwrap();
    let images = pick(&dataset, &split.train, 4);
    let classes: Vec<usize> = images.iter().map(|&i| dataset.labels[i]).collect();
    assert_eq!(classes, [0, 1, 2, 3]);
    for (row, &index) in images.iter().enumerate() {
        assert_eq!(
            cell(&png, &layout, row as u32, 0),
            dataset.image(index),
            "row {row}"
        );
        // The draws are transformed copies: not the original, not each other.
        let draws: Vec<Vec<u8>> = (1..=3)
            .map(|c| cell(&png, &layout, row as u32, c))
            .collect();
        assert!(
            draws.iter().all(|d| d.as_slice() != dataset.image(index)),
            "row {row}"
        );
        assert_ne!(draws[0], draws[1]);
    }

    // The same seed draws the same grid; another seed another.
    let again = dir.join("again.png");
    preview("experiments/augment.toml", &again, "7");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
    let other = dir.join("other.png");
    preview("experiments/augment.toml", &other, "8");
    assert_ne!(std::fs::read(&out).unwrap(), std::fs::read(&other).unwrap());
}

#[test]
fn without_augmentation_the_draws_are_the_original_and_it_says_so() {
    let out = scratch("preview-off").join("baseline.png");
    let stdout = preview("experiments/baseline.toml", &out, "0");
    assert!(
        stdout.contains("augmentation is off in this experiment"),
        "{stdout}"
    );
    let layout = GridLayout::new(28, 4, 3);
    let png = image::open(&out).unwrap().to_rgb8();
    for row in 0..4 {
        let original = cell(&png, &layout, row, 0);
        for column in 1..=3 {
            assert_eq!(cell(&png, &layout, row, column), original, "row {row}");
        }
    }
}

#[test]
fn the_augmentation_remedy_writes_its_preview_beside_the_new_file() {
    let dir = scratch("preview-fix");
    let base = dir.join("mine.toml");
    std::fs::copy(repo_path("experiments/digits.toml"), &base).unwrap();
    let settings = vec![("augment.rotation".to_string(), "40.0".to_string())];
    let file = kiln::fixes::write_extending(&base, "augment", &settings).unwrap();
    let png = kiln::augment_preview::for_fix(&file, &settings)
        .expect("an augmentation fix has a preview")
        .unwrap();
    assert_eq!(png, dir.join("mine-augment.png"));
    // digits are 8×8: cells scaled by 8; the default grid is 8 images beside 5 draws.
    let layout = GridLayout::new(8, 8, 5);
    let image = image::open(&png).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (layout.width, layout.height)
    );
    // A fix that does not touch augmentation has none.
    let other = vec![("model.batch_norm".to_string(), "true".to_string())];
    assert!(kiln::augment_preview::for_fix(&file, &other).is_none());
}
