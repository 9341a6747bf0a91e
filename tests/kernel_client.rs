//! A kernel-mode client of the output pin (another driver) that resubmits its read from its own
//! completion routine — the usual way kernel KS clients stream (WINDOWS-AUDIT F5). Its completion
//! routine re-enters ksring's dispatch on the completing thread, so ksring must never complete an
//! IRP, or let a cancel routine complete one, while it holds one of its spin locks: kshost stops
//! the process with `SPINLOCK_ALREADY_OWNED` if it does (on Windows: a deadlock; Driver Verifier's
//! deadlock detection bug-checks with 0xC4).

mod common;

use std::time::Duration;

use ksabi::{STATUS_CANCELLED, STATUS_FILE_CLOSED, STATUS_SUCCESS};
use ksclient::Properties;
use ksclient::io::InFlight;

/// A cancel that arrives while ksring's read pump holds the kernel client's read (acquired from
/// the queue, looking for data in an empty ring): the pump releases it, `KsReleaseIrpOnCancelableQueue`
/// runs ksring's cancel routine, and the read completes cancelled — which must happen after
/// ksring's locks are dropped, because the client's completion routine sends the next read right
/// there. The next read then gets the frame written after it.
#[test]
fn a_read_cancelled_inside_a_release_completes_outside_the_locks() {
    let backend = common::boot();
    let rig = common::rig(&backend);
    let m = backend.machine();
    let handle = kshost::Handle::from_raw(rig.output.handle().0);
    // The first acquire of the client's first read (by the pump its own dispatch runs) meets a cancel.
    m.cancel_next_acquired_irp();
    let reader = m.kernel_reader(handle, 2, 64, 2).expect("kernel reader");
    let frame = common::bytes(3, 10);
    let mut write = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS);
    let results = reader.finish(Duration::from_secs(10));
    assert_eq!(results.len(), 2, "both reads completed: {results:?}");
    assert_eq!(results[0].0.status, STATUS_CANCELLED, "the first read was cancelled empty");
    assert_eq!(results[1].0.status, STATUS_SUCCESS, "the resubmitted read got the frame");
    assert_eq!(results[1].1, 10);
    assert_eq!(common::stats(&rig.output).bytes_out, 10);
    drop(rig);
    backend.shutdown().assert_clean();
}

/// A kernel-mode client may hold a pin's file object past the pin's last handle (as an IRP-source
/// pin of another driver does): once the pin's cleanup has run, a stream request on it is refused
/// with `STATUS_FILE_CLOSED` — not taken as if the pin were still open (it would wait on a ring
/// nobody feeds) and not as a stopped pin's `STATUS_INVALID_DEVICE_STATE`.
#[test]
fn a_read_sent_after_the_pins_last_handle_closed_is_refused_as_closed() {
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let m = backend.machine();
        let handle = kshost::Handle::from_raw(rig.output.handle().0);
        let reader = m.kernel_reader_unstarted(handle, 1, 64).expect("kernel reader");
        rig.output.close().expect("the output pin's handle closes (the reader still holds its file object)");
        reader.start(1);
        let results = reader.finish(Duration::from_secs(10));
        assert_eq!(results.len(), 1, "the read completed: {results:?}");
        assert_eq!(results[0].0.status, STATUS_FILE_CLOSED, "{results:?}");
        assert_eq!(results[0].0.information, 0);
    }
    backend.shutdown().assert_clean();
}
