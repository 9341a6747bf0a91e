//! Windows host with the WDK: configure the driver link and packaging through `wdk-build`
//! (`/DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry ...`). Any other host: nothing to do — the host
//! build runs under kshost, and the cross build passes its linker flags on the command line.

#[allow(clippy::unnecessary_wraps)] // the Windows branch propagates wdk-build's error
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_FEATURE_EMULATED");
    #[cfg(windows)]
    {
        // The emulated variant on Windows is an ordinary user-mode library for the tests.
        if std::env::var_os("CARGO_FEATURE_EMULATED").is_none() {
            wdk_build::configure_wdk_binary_build()?;
        }
    }
    Ok(())
}
