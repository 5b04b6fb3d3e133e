//! The datasets kiln ships, as an experiment file names them: the one list of their names and
//! native image sizes (`data` decodes them; the validator and the defaults read this).

/// A dataset compiled into kiln.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundledDataset {
    /// What `data.dataset` says to use it.
    pub name: &'static str,
    /// Side of its square greyscale images.
    pub side: usize,
}

/// UCI digits: 1,797 images of 8×8 pixels.
pub const DIGITS: BundledDataset = BundledDataset {
    name: "digits",
    side: 8,
};

/// A 5,000-image subset of MNIST, 28×28 pixels.
pub const MNIST_5K: BundledDataset = BundledDataset {
    name: "mnist-5k",
    side: 28,
};

pub const BUNDLED: [BundledDataset; 2] = [DIGITS, MNIST_5K];

/// Side images from a folder are resized to when `data.image_size` is absent.
pub const FOLDER_IMAGE_SIZE: usize = 64;

/// The bundled dataset `name` refers to, if it is one.
pub fn bundled(name: &str) -> Option<BundledDataset> {
    BUNDLED.into_iter().find(|d| d.name == name)
}

/// The bundled names as a sentence: `"digits", "mnist-5k"`.
pub fn bundled_names() -> String {
    BUNDLED
        .iter()
        .map(|d| format!("\"{}\"", d.name))
        .collect::<Vec<_>>()
        .join(", ")
}
