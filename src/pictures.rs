//! The screen's pictures, built by the training side: kiln-train's gallery and augmentation
//! preview behind kiln-screen's [`PictureSource`].

use std::path::{Path, PathBuf};

use kiln_screen::tui::pictures::{self, PictureSource};

use crate::gallery::{Kind, Pictures};

struct TrainedPictures;

impl PictureSource for TrainedPictures {
    fn gallery(&self, run: &Path, kind: Kind, seed: u64) -> Result<Pictures, String> {
        crate::gallery::build(run, kind, seed)
    }

    fn augmentation_preview(
        &self,
        file: &Path,
        settings: &[(String, String)],
    ) -> Option<Result<PathBuf, String>> {
        crate::augment_preview::for_fix(file, settings)
            .map(|made| made.map_err(|e| format!("{e:#}")))
    }
}

/// Gives the screen its pictures, for this process.
pub fn install_pictures() {
    pictures::provide(Box::new(TrainedPictures));
}
