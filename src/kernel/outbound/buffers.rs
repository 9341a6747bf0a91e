//! The buffers an [`super::Outbound`] request carries: a stream header array, owned here, and
//! the memory its headers name — a ring's storage lent to the buffers with a reference that keeps
//! it allocated ([`Region`]): an IRP source sends and reads frames in place, with no copy and no
//! buffer of its own.
//!
//! The request goes down as a kernel-mode request, so the target trusts its headers: it reads or
//! writes `DataUsed`/`FrameExtent` bytes at `Data` without a probe of its own. What keeps that
//! inside the lent region is this type: headers are set only through bounds-checked methods, and
//! [`StreamBuffers::prepare`] rewrites every header it sends — `Data`, `FrameExtent`, `DataUsed`,
//! `Size` — from the extents kept here, so nothing written into the array meanwhile (by the
//! owner, or by the target while it had the array) can point the next request anywhere else.

use framering::FrameMeta;
use ksabi::{KSSTREAM_HEADER, KSTIME};

use super::super::ring_memory::RingRef;
use crate::kernel::stream::Direction;

/// Memory lent to the buffers for headers to name in place (a ring's storage), alive while the
/// value is.
pub trait Region {
    /// The first byte and the length.
    fn storage(&self) -> (*mut u8, usize);
    /// Whether two values lend the same memory.
    fn same(&self, other: &Self) -> bool;
}

impl Region for RingRef {
    fn storage(&self) -> (*mut u8, usize) {
        RingRef::storage(self)
    }

    fn same(&self, other: &Self) -> bool {
        RingRef::same(self, other)
    }
}

/// Bytes of a `KSSTREAM_HEADER`.
const HEADER_SIZE: usize = size_of::<KSSTREAM_HEADER>();

/// `N` stream headers over a lent [`Region`] (`R`: a ring's memory; an address and a length in
/// the unit tests).
pub struct StreamBuffers<const N: usize, R = RingRef> {
    headers: [KSSTREAM_HEADER; N],
    /// Where each header's bytes lie in `region`: always inside it (checked when set), or
    /// [`Extent::NONE`] for a header without bytes (an end-of-stream marker).
    extents: [Extent; N],
    /// The region the headers in use name, while any does.
    region: Option<R>,
    /// Headers in use: `count <= N`.
    count: usize,
}

// SAFETY: the headers' `Data` pointers are into `region`, which this value keeps alive; nothing
// here is tied to a thread.
unsafe impl<const N: usize, R: Send> Send for StreamBuffers<N, R> {}

/// A header with nothing in it.
pub const EMPTY: KSSTREAM_HEADER = KSSTREAM_HEADER {
    Size: 0,
    TypeSpecificFlags: 0,
    PresentationTime: KSTIME { Time: 0, Numerator: 0, Denominator: 0 },
    Duration: 0,
    FrameExtent: 0,
    DataUsed: 0,
    Data: core::ptr::null_mut(),
    OptionsFlags: 0,
    Reserved: 0,
};

/// Where a header's bytes lie in the region.
#[derive(Clone, Copy)]
struct Extent {
    start: u32,
    len: u32,
}

impl Extent {
    /// No bytes.
    const NONE: Self = Self { start: u32::MAX, len: 0 };

    /// `(start, len)`, unless it is [`Extent::NONE`].
    fn get(self) -> Option<(usize, usize)> {
        (self.start != u32::MAX).then_some((self.start as usize, self.len as usize))
    }
}

/// A header's range did not fit the region (or its index the array), or another region is in
/// use: nothing was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

impl<const N: usize, R: Region + Clone> StreamBuffers<N, R> {
    /// No headers in use, no region.
    pub fn new() -> Self {
        Self { headers: [EMPTY; N], extents: [Extent::NONE; N], region: None, count: 0 }
    }

    /// Header `i` over the `n` bytes at `offset` of `region` (lent: the buffers keep a reference
    /// on it while any header in use names it), with `flags` and the frame's metadata. A region
    /// other than the one lent already is refused while another header in use names that one.
    ///
    /// # Errors
    /// `i >= N`, the bytes do not lie in the region, or another region is still in use.
    pub fn set_in_region(
        &mut self,
        i: usize,
        region: &R,
        offset: usize,
        n: usize,
        flags: u32,
        meta: &FrameMeta,
    ) -> Result<(), OutOfBounds> {
        let (_, len) = region.storage();
        let fits = offset.checked_add(n).is_some_and(|end| end <= len);
        let (true, true, Ok(start32), Ok(n32)) = (fits, i < N, u32::try_from(offset), u32::try_from(n))
        else {
            return Err(OutOfBounds);
        };
        if start32 == u32::MAX {
            return Err(OutOfBounds); // (the "no bytes" mark)
        }
        if !self.region.as_ref().is_some_and(|lent| lent.same(region)) {
            if (0..self.count).any(|k| k != i && self.has_buffer(k)) {
                return Err(OutOfBounds);
            }
            self.region = Some(region.clone());
        }
        self.headers[i] = header_of(n, flags, meta);
        self.extents[i] = Extent { start: start32, len: n32 };
        Ok(())
    }

    /// Moves header `i` past its first `by` bytes (a write a target took the start of): the rest,
    /// with `flags` and the metadata.
    ///
    /// # Errors
    /// `i >= N`, or header `i` has no bytes.
    pub fn advance(&mut self, i: usize, by: usize, flags: u32, meta: &FrameMeta) -> Result<(), OutOfBounds> {
        let (Some(header), Some(extent)) = (self.headers.get_mut(i), self.extents.get_mut(i)) else {
            return Err(OutOfBounds);
        };
        let Some((start, len)) = extent.get() else { return Err(OutOfBounds) };
        let by = by.min(len);
        let rest = len - by;
        #[allow(clippy::cast_possible_truncation)] // within an extent that fits u32
        let moved = Extent { start: (start + by) as u32, len: rest as u32 };
        *header = header_of(rest, flags, meta);
        *extent = moved;
        Ok(())
    }

    /// Bytes header `i` was set over (0 without bytes).
    pub fn len(&self, i: usize) -> usize {
        self.extents.get(i).and_then(|e| e.get()).map_or(0, |(_, n)| n)
    }

    /// How many bytes header `i` holds: `DataUsed`, never more than its extent (a read's, after
    /// it completed).
    pub fn used(&self, i: usize) -> usize {
        self.header(i).map_or(0, |h| (h.DataUsed as usize).min(self.len(i)))
    }

    /// Lets the lent region go if no header in use names it any more.
    pub fn let_go_of_region(&mut self) {
        if !(0..self.count).any(|k| self.has_buffer(k)) {
            self.region = None;
        }
    }

    /// Header `i` with no bytes (an end-of-stream marker), with `flags` and the metadata.
    ///
    /// # Errors
    /// `i >= N`.
    pub fn set_empty(&mut self, i: usize, flags: u32, meta: &FrameMeta) -> Result<(), OutOfBounds> {
        let (Some(header), Some(extent)) = (self.headers.get_mut(i), self.extents.get_mut(i)) else {
            return Err(OutOfBounds);
        };
        *header = header_of(0, flags, meta);
        *extent = Extent::NONE;
        Ok(())
    }

    /// Header `i` as it stands (after a read completed: what the target filled in).
    pub fn header(&self, i: usize) -> Option<&KSSTREAM_HEADER> {
        self.headers[..self.count].get(i)
    }

    /// Whether header `i` names bytes (an end-of-stream marker made up here names none).
    pub fn has_buffer(&self, i: usize) -> bool {
        self.extents.get(i).and_then(|e| e.get()).is_some()
    }

    /// The header array itself, for a request over buffers that are not a region (a lent read's:
    /// [`super::Outbound::send_borrowed`]): the headers in use and the region are forgotten first,
    /// so nothing here names the region any more, and [`StreamBuffers::prepare`] rewrites every
    /// header of the next request over a region from its extents, whatever is left in the array.
    pub fn foreign_headers(&mut self) -> &mut [KSSTREAM_HEADER; N] {
        self.count = 0;
        self.extents = [Extent::NONE; N];
        self.region = None;
        &mut self.headers
    }

    /// Headers in use.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Uses the first `count` headers (at most `N`).
    pub fn set_count(&mut self, count: usize) {
        self.count = count.min(N);
    }

    /// Drops the first `first` headers in use; the rest move to the front.
    pub fn remove_front(&mut self, first: usize) {
        let first = first.min(self.count);
        for to in 0..self.count - first {
            self.headers[to] = self.headers[to + first];
            self.extents[to] = self.extents[to + first];
        }
        self.count -= first;
    }

    /// The header array for a request in `direction`: each header in use rewritten from the
    /// extents kept here (`Data` into the region, `FrameExtent` its extent; a write's `DataUsed`
    /// at most that, a read's 0), and the array's address and length in bytes.
    pub(super) fn prepare(&mut self, direction: Direction) -> (*mut core::ffi::c_void, u32) {
        let region = self.region.as_ref().map_or(core::ptr::null_mut(), |r| r.storage().0);
        for (h, extent) in self.headers[..self.count].iter_mut().zip(&self.extents) {
            let (data, extent) = extent
                .get()
                .filter(|_| !region.is_null())
                .map_or((core::ptr::null_mut(), 0), |(start, n)| (region.wrapping_add(start), n));
            #[allow(clippy::cast_possible_truncation)] // extents lie in a region of u32 size
            let extent = extent as u32;
            h.Data = data.cast();
            h.FrameExtent = extent;
            h.DataUsed = match direction {
                Direction::Write => h.DataUsed.min(extent),
                Direction::Read => 0,
            };
            #[allow(clippy::cast_possible_truncation)] // 56
            {
                h.Size = HEADER_SIZE as u32;
            }
        }
        #[allow(clippy::cast_possible_truncation)] // N * 56, a few KiB
        let length = (self.count * HEADER_SIZE) as u32;
        (self.headers.as_mut_ptr().cast(), length)
    }
}

/// A stream header over `n` bytes with `flags` and the frame's metadata (its `Data` is set when
/// the request is sent).
fn header_of(n: usize, flags: u32, meta: &FrameMeta) -> KSSTREAM_HEADER {
    #[allow(clippy::cast_possible_truncation)] // n lies in a region of u32 size (checked by the caller)
    let n = n as u32;
    KSSTREAM_HEADER {
        #[allow(clippy::cast_possible_truncation)] // 56
        Size: HEADER_SIZE as u32,
        TypeSpecificFlags: meta.type_specific_flags,
        PresentationTime: KSTIME { Time: meta.presentation_time, Numerator: meta.numerator, Denominator: meta.denominator },
        Duration: meta.duration,
        FrameExtent: n,
        DataUsed: n,
        Data: core::ptr::null_mut(),
        OptionsFlags: flags,
        Reserved: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FrameMeta {
        FrameMeta {
            options_flags: 0,
            type_specific_flags: 7,
            presentation_time: 1,
            numerator: 1,
            denominator: 1,
            duration: 2,
        }
    }

    /// A region for the tests: an address and a length (never read through here).
    #[derive(Clone)]
    struct Lent(usize, usize);

    impl Region for Lent {
        fn storage(&self) -> (*mut u8, usize) {
            (core::ptr::without_provenance_mut(self.0), self.1)
        }

        fn same(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }

    const RING: Lent = Lent(0x10000, 4096);

    fn buffers() -> StreamBuffers<4, Lent> {
        StreamBuffers::new()
    }

    /// The `Data` of header `i` of the array `prepare` returned.
    fn data_of(array: *mut core::ffi::c_void, i: usize) -> usize {
        // SAFETY: the array `prepare` returned, at least `i + 1` headers long, not borrowed
        // meanwhile.
        unsafe { (*array.cast::<KSSTREAM_HEADER>().wrapping_add(i)).Data }.addr()
    }

    #[test]
    fn headers_are_bounded_by_their_region_and_one_region_at_a_time() {
        let mut b = buffers();
        let other = Lent(0x20000, 4096);
        assert_eq!(b.set_in_region(0, &RING, 4000, 97, 0, &meta()), Err(OutOfBounds), "past the region");
        assert_eq!(b.set_in_region(0, &RING, usize::MAX, 2, 0, &meta()), Err(OutOfBounds), "overflows");
        assert_eq!(b.set_in_region(4, &RING, 0, 1, 0, &meta()), Err(OutOfBounds), "index past the array");
        b.set_in_region(0, &RING, 4000, 96, 0, &meta()).unwrap();
        b.set_in_region(1, &RING, 0, 10, 0, &meta()).unwrap();
        b.set_count(2);
        assert_eq!((b.len(0), b.used(0)), (96, 96), "a header that ends at the region's end fits");
        // Another region while headers in use name the first: refused, nothing changed.
        assert_eq!(b.set_in_region(1, &other, 0, 10, 0, &meta()), Err(OutOfBounds));
        let (array, _) = b.prepare(Direction::Write);
        assert_eq!((data_of(array, 0), data_of(array, 1)), (0x10000 + 4000, 0x10000));
        // Once no header in use names it, another region may be lent.
        b.set_empty(0, 0, &meta()).unwrap();
        b.set_in_region(1, &other, 8, 8, 0, &meta()).unwrap();
        let (array, _) = b.prepare(Direction::Write);
        assert_eq!(data_of(array, 1), 0x20000 + 8);
        b.advance(1, 3, 0, &meta()).unwrap();
        assert_eq!(b.len(1), 5);
        let (array, _) = b.prepare(Direction::Write);
        assert_eq!(data_of(array, 1), 0x20000 + 11, "advanced past what was taken");
        assert_eq!(b.advance(0, 1, 0, &meta()), Err(OutOfBounds), "a header without bytes");
    }

    #[test]
    fn the_region_is_let_go_only_once_no_header_in_use_names_it() {
        let mut b = buffers();
        b.set_in_region(0, &RING, 0, 8, 0, &meta()).unwrap();
        b.set_count(1);
        b.let_go_of_region();
        assert!(b.region.is_some(), "a header in use names it");
        b.set_count(0);
        b.let_go_of_region();
        assert!(b.region.is_none());
    }

    #[test]
    fn prepare_rewrites_what_the_target_may_have_changed() {
        let mut b = buffers();
        b.set_in_region(0, &RING, 8, 16, 0, &meta()).unwrap();
        b.set_empty(1, 1, &meta()).unwrap();
        b.set_count(2);
        let (array, length) = b.prepare(Direction::Write);
        assert_eq!(length as usize, 2 * HEADER_SIZE);
        let h = b.header(0).unwrap();
        assert_eq!((h.Data.addr(), h.FrameExtent, h.DataUsed), (0x10000 + 8, 16, 16));
        assert!(b.header(1).unwrap().Data.is_null() && b.header(1).unwrap().FrameExtent == 0);
        // What a target holding the array could write into it.
        let raw = array.cast::<KSSTREAM_HEADER>();
        // SAFETY: the array `prepare` returned, two headers long, not borrowed meanwhile.
        let first = unsafe { &mut *raw };
        first.Data = core::ptr::dangling_mut();
        first.FrameExtent = u32::MAX;
        first.DataUsed = u32::MAX;
        // SAFETY: as above.
        unsafe { &mut *raw.wrapping_add(1) }.Data = core::ptr::dangling_mut();
        assert_eq!(
            (b.used(0), b.used(1), b.used(2)),
            (16, 0, 0),
            "a DataUsed past the extent counts only the extent"
        );
        b.prepare(Direction::Read);
        let h = b.header(0).unwrap();
        assert_eq!((h.Data.addr(), h.FrameExtent, h.DataUsed), (0x10000 + 8, 16, 0));
        assert!(b.header(1).unwrap().Data.is_null(), "a header without bytes names none");
        assert_eq!(b.header(0).unwrap().Size as usize, HEADER_SIZE);
    }

    #[test]
    fn removing_from_the_front_keeps_each_header_with_its_bytes() {
        let mut b = buffers();
        b.set_in_region(0, &RING, 0, 4, 0, &meta()).unwrap();
        b.set_empty(1, 0, &meta()).unwrap();
        b.set_in_region(2, &RING, 32, 3, 0, &meta()).unwrap();
        b.set_count(3);
        b.remove_front(1);
        assert_eq!(b.count(), 2);
        assert!(!b.has_buffer(0));
        assert!(b.has_buffer(1) && b.len(1) == 3);
        let (array, _) = b.prepare(Direction::Write);
        assert_eq!(data_of(array, 1), 0x10000 + 32);
        b.remove_front(9);
        assert_eq!(b.count(), 0);
        assert!(b.header(0).is_none());
    }

    #[test]
    fn at_most_n_headers_are_used() {
        let mut b = buffers();
        b.set_count(99);
        assert_eq!(b.count(), 4);
        assert_eq!(b.prepare(Direction::Read).1 as usize, 4 * HEADER_SIZE);
    }
}
