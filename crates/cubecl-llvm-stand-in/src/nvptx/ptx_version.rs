//! The PTX ISA version a driver loads, which cubecl-cuda records beside each compiled kernel.

use core::fmt;

/// A PTX ISA version as the NVPTX target spells it: 8.7 is `87`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PtxVersion(u32);

impl PtxVersion {
    /// The newest version a driver of CUDA `driver` (12.8 is `12080`) loads; `None` before 10.0.
    pub fn for_driver(driver: i32) -> Option<Self> {
        DRIVER_PTX
            .iter()
            .find(|(first_driver, _)| driver >= *first_driver)
            .map(|(_, ptx)| Self(*ptx))
    }
}

impl fmt::Display for PtxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ptx{}", self.0)
    }
}

/// The first CUDA release to load each PTX version, newest first. Only the cache key depends on
/// it here (no PTX is emitted), so the table need not grow with new drivers.
const DRIVER_PTX: &[(i32, u32)] = &[
    (13000, 90),
    (12080, 87),
    (12050, 85),
    (12000, 80),
    (11000, 70),
    (10000, 63),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_gets_the_newest_version_it_loads() {
        assert_eq!(PtxVersion::for_driver(13000).unwrap().to_string(), "ptx90");
        assert_eq!(PtxVersion::for_driver(12060).unwrap().to_string(), "ptx85");
        assert_eq!(PtxVersion::for_driver(9020), None);
    }
}
