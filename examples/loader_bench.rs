//! The loader's images per second on a 224×224 JPEG folder with augmentation on (no training).
fn main() {
    let dir = std::env::temp_dir().join(format!("kiln-loader-bench-{}", std::process::id()));
    let rate = kiln::bench::loader_images_per_second(224, 256, 128, &dir).expect("loader bench");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "loader: {:.0} img/s; decoding the folder: {:.0} img/s",
        rate.batches, rate.decode
    );
}
