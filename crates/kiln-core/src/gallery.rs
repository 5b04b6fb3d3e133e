//! What the image view shows: captioned tiles of a run's training images beside augmented
//! draws of them, or of the validation images its model gets wrong. Plain data; the training
//! crate builds them (`kiln_train::gallery`), the screen draws them.

use image::RgbImage;

/// Which pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Training images beside augmented draws of them.
    Augmented,
    /// Validation images the model gets wrong, the most confident first.
    Mistakes,
}

/// A built gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct Pictures {
    pub tiles: Vec<Tile>,
    /// For mistakes: the epochs the judged checkpoint had trained.
    pub epoch: Option<usize>,
    /// Anything the user should know to read them (augmentation that is off).
    pub note: Option<String>,
}

/// One picture and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub image: RgbImage,
    pub caption: String,
}

/// Training images shown by the augmentation gallery, and draws beside each.
pub const AUGMENTED_IMAGES: usize = 4;
pub const DRAWS: usize = 3;
/// At most this many mistakes are shown, the most confident first.
pub const MAX_MISTAKES: usize = 60;
