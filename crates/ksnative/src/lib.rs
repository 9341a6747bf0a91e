//! # ksnative — the pure parts of the native test client
//!
//! `ksnative.exe` is an NT *native* program (subsystem native, entry `NtProcessStartup`, imports
//! from `ntdll.dll` only) that smss runs from `BootExecute` in the ReactOS lab, before Win32
//! exists. It does what a Windows KS client does — finds the KsRing interface under `\GLOBAL??`,
//! opens the filter, creates pins the way ksuser's `KsCreatePin` does, sets states, streams with
//! overlapped `NtDeviceIoControlFile` requests, cancels, closes — and prints `PASS name` /
//! `FAIL name: why` lines on the kernel debugger's serial port.
//!
//! This library holds what does not need NT: the command line, interface-link matching, the pin
//! create name, the NT user-mode structures the program passes to ntdll (checked against
//! windows-sys here), and the result tally. The request bytes and the stream pattern come from
//! `ksrequest`, the layouts from `ksabi` — the same code ksclient uses. The program itself is
//! `src/native/`, built only with the `native` feature for `x86_64-pc-windows-msvc`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod names;
pub mod ntuser;
pub mod tally;
