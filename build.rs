//! With the opt-in `torch` feature, records where LibTorch's shared libraries are as the
//! binary's run path, so `kiln` starts without `LD_LIBRARY_PATH`. Does nothing otherwise.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys (links = "tch") reports the library folder it linked against.
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
