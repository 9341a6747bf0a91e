//! The two pin factories as a type: a [`PinId`] is the input or the output, and [`PerPin`] holds
//! one value per pin, indexed by it. A pin id that comes in a request (`KSPIN_CONNECT.PinId`,
//! `KSP_PIN.PinId`) is checked once, where it comes in; nothing is indexed by an unchecked number.

use core::ops::{Index, IndexMut};

use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// A pin factory of the filter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PinId {
    /// [`PIN_INPUT`]: the data sink (written to).
    Input,
    /// [`PIN_OUTPUT`]: the data source (read from).
    Output,
}

impl PinId {
    /// The pin factory of a request's id, if there is one.
    #[must_use]
    pub const fn from_u32(id: u32) -> Option<Self> {
        match id {
            PIN_INPUT => Some(Self::Input),
            PIN_OUTPUT => Some(Self::Output),
            _ => None,
        }
    }

    /// The id KS and clients use.
    #[must_use]
    pub const fn raw(self) -> u32 {
        match self {
            Self::Input => PIN_INPUT,
            Self::Output => PIN_OUTPUT,
        }
    }

    /// The other pin factory.
    #[must_use]
    pub const fn peer(self) -> Self {
        match self {
            Self::Input => Self::Output,
            Self::Output => Self::Input,
        }
    }
}

/// One `T` per pin factory.
pub struct PerPin<T>([T; 2]);

impl<T> PerPin<T> {
    /// The input's value and the output's.
    pub const fn new(input: T, output: T) -> Self {
        Self([input, output])
    }
}

impl<T> Index<PinId> for PerPin<T> {
    type Output = T;
    fn index(&self, pin: PinId) -> &T {
        match pin {
            PinId::Input => &self.0[0],
            PinId::Output => &self.0[1],
        }
    }
}

impl<T> IndexMut<PinId> for PerPin<T> {
    fn index_mut(&mut self, pin: PinId) -> &mut T {
        match pin {
            PinId::Input => &mut self.0[0],
            PinId::Output => &mut self.0[1],
        }
    }
}

impl<T> PerPin<T> {
    /// Both values, the input's first.
    pub fn iter(&self) -> core::slice::Iter<'_, T> {
        self.0.iter()
    }
}
