use thiserror::Error;

/// Everything that can be wrong with input handed to the shared core.
#[derive(Debug, Error)]
pub enum Error {
    /// A sample must hold exactly [`crate::FRAMES`] frames.
    #[error("a sample needs {expected} frames, got {got}")]
    FrameCount { expected: usize, got: usize },
    /// A frame's pixel buffer does not match its stated width, height and layout.
    #[error("frame {index}: {width}x{height} {layout:?} needs {expected} bytes, got {got}")]
    BufferSize {
        index: usize,
        width: u32,
        height: u32,
        layout: crate::PixelLayout,
        expected: usize,
        got: usize,
    },
    /// A frame or a requested output size with a zero side.
    #[error("frame {index}: empty image ({width}x{height})")]
    EmptyFrame {
        index: usize,
        width: u32,
        height: u32,
    },
    /// A frame larger than [`crate::limits::MAX_FRAME_SIDE`] / [`crate::limits::MAX_FRAME_PIXELS`],
    /// refused before anything is allocated for it.
    #[error(
        "frame {index} is {width}x{height}: frames may be at most {max_side} pixels wide or tall and {max_pixels} pixels in all"
    )]
    FrameTooLarge {
        index: usize,
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    /// The output size of preprocessing must be 1 to [`crate::limits::INPUT_SIZE`]'s end.
    #[error("input size must be 1 to 512 pixels, got {0}")]
    BadInputSize(u32),
    /// The frames of one sample come from one camera and must share a size.
    #[error(
        "frame {index} is {width}x{height} but frame 0 is {first_width}x{first_height}: the frames of a sample must share one size"
    )]
    MixedSizes {
        index: usize,
        width: u32,
        height: u32,
        first_width: u32,
        first_height: u32,
    },
    /// One box per frame is needed to crop a sample around its faces.
    #[error("{got} crop boxes for {expected} frames")]
    BoxCount { expected: usize, got: usize },
    /// The resizer refused the images (should not happen after the checks above).
    #[error("frame {index}: resize failed: {source}")]
    Resize {
        index: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Result with the core's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;
