//! Parallel data loading with a bounded prefetch queue.
//!
//! Worker threads (a rayon pool) decode and crop/resize the frames of a batch with
//! `liveness-core`; a producer thread hands finished batches through a bounded channel, so the
//! next batches are ready while the device trains on this one. Batches stay `u8` (4× less to
//! copy) and are normalised on the device. A cache keeps each sample's resized frames after their
//! first decode, so later epochs skip JPEG decoding altogether.
//!
//! With a face crop, the face detector runs once per frame, and the crop regions (or the face
//! gate's refusal) are kept next to the frame cache for the whole run.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use liveness_core::face::{Refusal, gate};
use liveness_core::{Crop, FRAMES, Frame, Region, resize_region};
use liveness_runtime::FaceDetector;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::{DataError, Sample, decode_frame};
use crate::shown;

/// The loader failed (a bad frame, or its thread stopped).
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// A frame could not be read or used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The rayon pool could not start.
    #[error("cannot start the data-loading threads: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
    /// The producer thread ended early (it panicked).
    #[error("the data-loading thread stopped unexpectedly")]
    ThreadDied,
}

/// The crop regions of a sample's five frames (per frame, one per view), or the face gate's
/// refusal.
type Regions = Result<Vec<Vec<Region>>, Refusal>;

/// Where a sample's frames come from: files on disk, decoded and cropped/resized on demand, with
/// an optional in-memory cache of the result.
pub struct FrameStore {
    samples: Vec<Sample>,
    size: u32,
    cache: Option<Vec<OnceLock<Arc<[u8]>>>>,
    /// One crop rule per view.
    crops: Vec<Crop>,
    /// With a face crop: the detector, and each sample's regions once known.
    faces: Option<(FaceDetector, Vec<OnceLock<Regions>>)>,
}

impl FrameStore {
    /// A store for `samples` at input size `size` with the centre-square crop, caching resized
    /// frames if `cache`.
    pub fn new(samples: Vec<Sample>, size: u32, cache: bool) -> Self {
        Self::with_crops(samples, size, cache, vec![Crop::CentreSquare], None)
    }

    /// A store with one view per crop rule in `crops` (each frame's views side by side); a face
    /// crop needs `detector`.
    pub fn with_crops(
        samples: Vec<Sample>,
        size: u32,
        cache: bool,
        crops: Vec<Crop>,
        detector: Option<FaceDetector>,
    ) -> Self {
        let cache = cache.then(|| (0..samples.len()).map(|_| OnceLock::new()).collect());
        let faces = detector
            .filter(|_| crops.iter().any(Crop::needs_face))
            .map(|d| (d, (0..samples.len()).map(|_| OnceLock::new()).collect()));
        FrameStore {
            samples,
            size,
            cache,
            crops,
            faces,
        }
    }

    /// Views per frame.
    pub fn views(&self) -> usize {
        self.crops.len()
    }

    /// The samples, in store order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Whether resized frames are kept in memory.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// Input size (square side).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes of one sample: five frames of `views` `size × size` RGB images each.
    pub fn sample_bytes(&self) -> usize {
        FRAMES * self.views() * self.size as usize * self.size as usize * 3
    }

    /// The five decoded frames of sample `index`, checked to share one size.
    fn decode(&self, index: usize) -> Result<Vec<image::RgbImage>, DataError> {
        let sample = &self.samples[index];
        let mut images: Vec<image::RgbImage> = Vec::with_capacity(FRAMES);
        for path in &sample.frames {
            let rgb = decode_frame(path)?;
            if let Some(first) = images.first()
                && first.dimensions() != rgb.dimensions()
            {
                return Err(DataError::MixedSizes {
                    path: path.clone(),
                    width: rgb.width(),
                    height: rgb.height(),
                    first: sample.frames[0].clone(),
                    first_width: first.width(),
                    first_height: first.height(),
                });
            }
            images.push(rgb);
        }
        Ok(images)
    }

    /// The crop regions of sample `index` from its decoded frames (the face gate's refusal when a
    /// face crop finds no single face in some frame).
    fn regions(&self, index: usize, images: &[image::RgbImage]) -> Result<Regions, DataError> {
        let Some((detector, known)) = &self.faces else {
            return Ok(Ok(images
                .iter()
                .map(|i| {
                    self.crops
                        .iter()
                        .map(|c| c.region(i.width(), i.height(), None))
                        .collect()
                })
                .collect()));
        };
        if let Some(hit) = known[index].get() {
            return Ok(hit.clone());
        }
        let sample = &self.samples[index];
        let mut per_frame = Vec::with_capacity(FRAMES);
        for (k, (img, path)) in images.iter().zip(&sample.frames).enumerate() {
            let frame = Frame::rgb(img.as_raw(), img.width(), img.height());
            per_frame.push(detector.detect(frame, k).map_err(|e| DataError::Detector {
                path: path.clone(),
                message: e.to_string(),
            })?);
        }
        let regions = gate(&per_frame).map(|faces| {
            images
                .iter()
                .zip(&faces)
                .map(|(i, f)| {
                    self.crops
                        .iter()
                        .map(|c| c.region(i.width(), i.height(), Some(f)))
                        .collect()
                })
                .collect()
        });
        let _ = known[index].set(regions.clone());
        Ok(regions)
    }

    /// The face gate's refusal of sample `index`, if any (decoding and detecting on first use;
    /// always `None` without a face crop).
    pub fn refusal(&self, index: usize) -> Result<Option<Refusal>, DataError> {
        if self.faces.is_none() {
            return Ok(None);
        }
        let images = self.decode(index)?;
        Ok(self.regions(index, &images)?.err())
    }

    /// Every sample the face gate refuses, with its refusal (in parallel; empty without a face
    /// crop). With the cache on, this also fills it.
    pub fn refused(&self, pool: &rayon::ThreadPool) -> Result<Vec<(usize, Refusal)>, DataError> {
        if self.faces.is_none() && !self.is_cached() {
            return Ok(Vec::new());
        }
        let found: Vec<Option<(usize, Refusal)>> = pool.install(|| {
            (0..self.samples.len())
                .into_par_iter()
                .map(|i| match self.frames(i) {
                    Ok(_) => Ok(None),
                    Err(DataError::Refused { refusal, .. }) => Ok(Some((i, refusal))),
                    Err(e) => Err(e),
                })
                .collect::<Result<_, DataError>>()
        })?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The five resized frames of sample `index` (HWC `u8`, frame after frame).
    pub fn frames(&self, index: usize) -> Result<Arc<[u8]>, DataError> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c[index].get()) {
            return Ok(hit.clone());
        }
        let sample = &self.samples[index];
        let images = self.decode(index)?;
        let regions = self
            .regions(index, &images)?
            .map_err(|refusal| DataError::Refused {
                path: sample.path.clone(),
                refusal,
            })?;
        let mut out = Vec::with_capacity(self.sample_bytes());
        for (k, ((img, views), path)) in images.iter().zip(&regions).zip(&sample.frames).enumerate()
        {
            let frame = Frame::rgb(img.as_raw(), img.width(), img.height());
            for region in views {
                let resized = resize_region(frame, *region, self.size, k).map_err(|source| {
                    DataError::Preprocess {
                        path: path.clone(),
                        source,
                    }
                })?;
                out.extend_from_slice(&resized);
            }
        }
        let frames: Arc<[u8]> = out.into();
        if let Some(cache) = &self.cache {
            let _ = cache[index].set(frames.clone());
        }
        Ok(frames)
    }
}

/// Prints the samples the face gate refused (count and paths): they are never trained on, and
/// count as classified attacks in every metric, as the product would not let them pass.
pub fn report_refused(store: &FrameStore, refused: &[(usize, Refusal)]) {
    if refused.is_empty() {
        return;
    }
    println!(
        "face gate: {} sample(s) refused (left out of training; scored as attacks):",
        refused.len()
    );
    for (i, r) in refused {
        println!("  {}: {r}", shown(&store.samples()[*i].path));
    }
}

/// One batch, ready to copy to the device.
pub struct Batch {
    /// `[n, FRAMES, views, size, size, 3]` `u8`.
    pub pixels: Vec<u8>,
    /// Binary targets, `0` live / `1` spoof.
    pub labels: Vec<f32>,
    /// Store indices of the samples.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The order of one epoch: the training indices shuffled by `(seed, epoch)`.
pub fn epoch_order(indices: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = indices.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64)));
    order
}

/// A fixed mix of two numbers into one seed (splitmix64 finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random horizontal flip, decided per (seed, epoch, sample) so that it does not depend on which
/// thread builds the batch and a resumed run flips exactly as an uninterrupted one.
#[derive(Debug, Clone, Copy)]
pub struct Flip {
    /// Run seed.
    pub seed: u64,
    /// Epoch (1-based).
    pub epoch: usize,
}

impl Flip {
    fn applies(&self, sample: usize) -> bool {
        mix(mix(self.seed, self.epoch as u64), sample as u64) & 1 == 1
    }
}

/// Mirrors every row of each `size × size` RGB frame in place.
fn flip_frames(pixels: &mut [u8], size: usize) {
    for row in pixels.chunks_exact_mut(size * 3) {
        let (mut l, mut r) = (0, size - 1);
        while l < r {
            for c in 0..3 {
                row.swap(l * 3 + c, r * 3 + c);
            }
            l += 1;
            r -= 1;
        }
    }
}

/// Streams `order` as batches of `batch_size` from a background thread, at most `prefetch`
/// batches ahead. Dropping the receiver stops the producer.
pub fn stream(
    store: Arc<FrameStore>,
    order: Vec<usize>,
    batch_size: usize,
    flip: Option<Flip>,
    prefetch: usize,
    pool: Arc<rayon::ThreadPool>,
) -> (Receiver<Result<Batch, LoaderError>>, JoinHandle<()>) {
    let (tx, rx) = bounded(prefetch.max(1));
    let handle = std::thread::spawn(move || {
        let per_sample = store.sample_bytes();
        let size = store.size() as usize;
        for chunk in order.chunks(batch_size.max(1)) {
            let mut pixels = vec![0u8; chunk.len() * per_sample];
            let filled = pool.install(|| {
                pixels
                    .par_chunks_mut(per_sample)
                    .zip(chunk.par_iter())
                    .try_for_each(|(dst, &i)| {
                        dst.copy_from_slice(&store.frames(i)?);
                        if flip.is_some_and(|f| f.applies(i)) {
                            flip_frames(dst, size);
                        }
                        Ok::<_, DataError>(())
                    })
            });
            let batch = filled.map_err(LoaderError::from).map(|()| Batch {
                pixels,
                labels: chunk
                    .iter()
                    .map(|&i| store.samples()[i].class.label())
                    .collect(),
                indices: chunk.to_vec(),
            });
            let failed = batch.is_err();
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    });
    (rx, handle)
}

/// Waits for a stream's producer thread; a panic there is an error, not a silent short epoch.
pub fn join(producer: JoinHandle<()>) -> Result<(), LoaderError> {
    producer.join().map_err(|_| LoaderError::ThreadDied)
}

/// A rayon pool with `workers` threads (0 = one per core).
pub fn worker_pool(workers: usize) -> Result<Arc<rayon::ThreadPool>, LoaderError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("loader-{i}"))
        .build()?;
    Ok(Arc::new(pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_mirrors_rows_and_twice_is_identity() {
        let size = 3;
        let orig: Vec<u8> = (0..(size * size * 3) as u8).collect();
        let mut v = orig.clone();
        flip_frames(&mut v, size);
        assert_eq!(&v[0..3], &orig[6..9]);
        assert_eq!(&v[3..6], &orig[3..6]);
        flip_frames(&mut v, size);
        assert_eq!(v, orig);
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let idx: Vec<usize> = (0..50).collect();
        let a = epoch_order(&idx, 7, 1);
        assert_eq!(a, epoch_order(&idx, 7, 1));
        assert_ne!(a, epoch_order(&idx, 7, 2));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, idx);
    }
}
