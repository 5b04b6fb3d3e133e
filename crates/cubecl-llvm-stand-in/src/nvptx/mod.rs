//! The NVPTX items cubecl-cuda names: only the PTX version it keys its kernel cache with.

pub mod ptx_version;
