//! TensorBoard event files, written by hand: a few protobuf fields of `Event` / `Summary`
//! encoded directly, each record framed with its length and masked CRC32C checksums as
//! TensorFlow's record format wants. TensorBoard, W&B (`wandb sync --sync-tensorboard`) and
//! anything built on TensorBoard's reader open them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The first record of every event file.
const FILE_VERSION: &str = "brain.Event:2";

/// An open event file.
pub struct EventWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

/// The checksum TensorFlow's records carry: CRC32C, rotated and offset so that a checksum of
/// data that holds checksums stays well distributed.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<wall time>.<tag>` (TensorBoard finds files by that
    /// name) and writes the file-version record.
    pub fn create(dir: &Path, wall_time: f64, tag: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("events.out.tfevents.{}.{tag}", wall_time as u64));
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut writer = Self { file, path };
        let mut event = Vec::new();
        double_field(&mut event, 1, wall_time);
        bytes_field(&mut event, 3, FILE_VERSION.as_bytes());
        writer.record(&event)?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar (`simple_value`) at `step`.
    pub fn scalar(
        &mut self,
        tag: &str,
        step: i64,
        wall_time: f64,
        value: f32,
    ) -> std::io::Result<()> {
        let mut summary_value = Vec::new();
        bytes_field(&mut summary_value, 1, tag.as_bytes());
        fixed32_field(&mut summary_value, 2, value.to_bits());
        self.summary(step, wall_time, &summary_value)
    }

    /// Text (Markdown) for TensorBoard's text plugin: a string tensor tagged with its plugin.
    pub fn text(
        &mut self,
        tag: &str,
        step: i64,
        wall_time: f64,
        text: &str,
    ) -> std::io::Result<()> {
        let mut plugin_data = Vec::new();
        bytes_field(&mut plugin_data, 1, b"text");
        let mut metadata = Vec::new();
        bytes_field(&mut metadata, 1, &plugin_data);
        let mut tensor = Vec::new();
        varint_field(&mut tensor, 1, DT_STRING);
        // A one-element vector: shape [1].
        let mut dim = Vec::new();
        varint_field(&mut dim, 1, 1);
        let mut shape = Vec::new();
        bytes_field(&mut shape, 2, &dim);
        bytes_field(&mut tensor, 2, &shape);
        bytes_field(&mut tensor, 8, text.as_bytes());
        let mut summary_value = Vec::new();
        bytes_field(&mut summary_value, 1, tag.as_bytes());
        bytes_field(&mut summary_value, 9, &metadata);
        bytes_field(&mut summary_value, 8, &tensor);
        self.summary(step, wall_time, &summary_value)
    }

    /// Hands what is buffered to the file, so a reader sees it now.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(self.path)
    }

    fn summary(&mut self, step: i64, wall_time: f64, summary_value: &[u8]) -> std::io::Result<()> {
        let mut summary = Vec::new();
        bytes_field(&mut summary, 1, summary_value);
        let mut event = Vec::new();
        double_field(&mut event, 1, wall_time);
        varint_field(&mut event, 2, step as u64);
        bytes_field(&mut event, 5, &summary);
        self.record(&event)
    }

    /// One record: length, its checksum, the data, the data's checksum.
    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let length = (data.len() as u64).to_le_bytes();
        self.file.write_all(&length)?;
        self.file.write_all(&masked_crc32c(&length).to_le_bytes())?;
        self.file.write_all(data)?;
        self.file.write_all(&masked_crc32c(data).to_le_bytes())
    }
}

/// `tensorflow.DataType.DT_STRING`.
const DT_STRING: u64 = 7;

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    varint(out, (field << 3) | wire_type);
}

fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    key(out, field, 0);
    varint(out, value);
}

fn double_field(out: &mut Vec<u8>, field: u64, value: f64) {
    key(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed32_field(out: &mut Vec<u8>, field: u64, bits: u32) {
    key(out, field, 5);
    out.extend_from_slice(&bits.to_le_bytes());
}
