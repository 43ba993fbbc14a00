//! The one capture implementation: `getUserMedia` → a `<video>` → a canvas → RGBA `ImageData`
//! frames at a set interval. The widget only shows the video and calls these methods.

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, HtmlVideoElement, MediaStream,
    MediaStreamConstraints, MediaStreamTrack,
};

use crate::error::{ErrorCode, LivenessError, Result, js_error_name, js_message};

/// How long to wait for the first decoded frame before calling the camera broken.
const FIRST_FRAME_TIMEOUT_MS: i32 = 10_000;

fn window() -> Result<web_sys::Window> {
    web_sys::window().ok_or_else(|| {
        LivenessError::new(ErrorCode::CameraFailed, "no window: capture needs a page")
    })
}

/// A promise that resolves after `ms` milliseconds.
async fn sleep(ms: i32) -> Result<()> {
    let window = window()?;
    let promise = Promise::new(&mut |resolve, _| {
        // A failing setTimeout only means no wait, which the caller tolerates.
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| LivenessError::new(ErrorCode::CameraFailed, js_message(&e)))
}

/// Resolves at the video's next presented frame (`requestVideoFrameCallback` where the browser
/// has it, else the next animation frame), or after `timeout_ms`.
async fn next_frame(video: &HtmlVideoElement, timeout_ms: i32) -> Result<()> {
    let window = window()?;
    let rvfc = Reflect::get(video, &"requestVideoFrameCallback".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    let promise = Promise::new(&mut |resolve, _| {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, timeout_ms);
        let _ = match &rvfc {
            Some(f) => f.call1(video, &resolve).map(|_| ()),
            None => window.request_animation_frame(&resolve).map(|_| ()),
        };
    });
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|e| LivenessError::new(ErrorCode::CameraFailed, js_message(&e)))
}

/// An open camera playing into a `<video>` element.
#[wasm_bindgen]
pub struct Camera {
    video: HtmlVideoElement,
    stream: MediaStream,
}

#[wasm_bindgen]
impl Camera {
    /// Asks for the camera with `videoConstraints` (a `MediaTrackConstraints` object, or
    /// `true`), plays it into `video`, and resolves once a first frame is decoded. Rejects with
    /// a `LivenessError` whose code is `camera-denied`, `camera-missing`, `camera-in-use` or
    /// `camera-failed`.
    pub async fn open(
        video: HtmlVideoElement,
        video_constraints: JsValue,
    ) -> std::result::Result<Camera, JsValue> {
        Ok(Self::open_inner(video, video_constraints).await?)
    }

    async fn open_inner(video: HtmlVideoElement, video_constraints: JsValue) -> Result<Camera> {
        let devices = window()?
            .navigator()
            .media_devices()
            .map_err(|_| LivenessError::new(ErrorCode::CameraFailed, "navigator.mediaDevices is missing (the page must be served over https or from localhost)"))?;
        let constraints = if video_constraints.is_undefined() || video_constraints.is_null() {
            JsValue::TRUE
        } else {
            video_constraints
        };
        let mut request = MediaStreamConstraints::new();
        request.video(&constraints).audio(&JsValue::FALSE);
        let promise = devices
            .get_user_media_with_constraints(&request)
            .map_err(|e| media_error(&e))?;
        let stream: MediaStream = JsFuture::from(promise)
            .await
            .map_err(|e| media_error(&e))?
            .unchecked_into();
        let camera = Camera { video, stream };
        // From here on a failure must release the camera again.
        if let Err(e) = camera.start_playing().await {
            camera.stop();
            return Err(e);
        }
        Ok(camera)
    }

    async fn start_playing(&self) -> Result<()> {
        let video = &self.video;
        video.set_muted(true);
        let _ = video.set_attribute("playsinline", "");
        video.set_src_object(Some(&self.stream));
        let played = video
            .play()
            .map_err(|e| LivenessError::new(ErrorCode::CameraFailed, js_message(&e)))?;
        JsFuture::from(played).await.map_err(|e| {
            LivenessError::new(
                ErrorCode::CameraFailed,
                format!("the video would not play: {}", js_message(&e)),
            )
        })?;
        // Right after playback starts the first grab can be black: wait for a presented frame.
        next_frame(video, FIRST_FRAME_TIMEOUT_MS).await?;
        if video.video_width() == 0 || video.video_height() == 0 {
            return Err(LivenessError::new(
                ErrorCode::CameraFailed,
                "the camera delivered no picture",
            ));
        }
        Ok(())
    }

    /// Grabs `count` frames, `intervalMs` apart, as RGBA `ImageData` at the camera's
    /// resolution. Resolves to an array of `ImageData`.
    pub fn capture(&self, count: u32, interval_ms: u32) -> Promise {
        let video = self.video.clone();
        let live = self.is_active();
        wasm_bindgen_futures::future_to_promise(async move {
            if !live {
                return Err(
                    LivenessError::new(ErrorCode::CameraFailed, "the camera is stopped").into(),
                );
            }
            let frames = grab_frames(&video, count, interval_ms).await?;
            Ok(frames.into())
        })
    }

    /// Stops every track (the camera light goes off) and detaches the video. Safe to call twice.
    pub fn stop(&self) {
        for track in self.stream.get_tracks().iter() {
            track.unchecked_into::<MediaStreamTrack>().stop();
        }
        self.video.set_src_object(None);
    }

    /// Whether any track of the stream is still live.
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> bool {
        self.is_active()
    }

    /// The resolution the camera delivers, `[width, height]`.
    #[wasm_bindgen(getter)]
    pub fn resolution(&self) -> Vec<u32> {
        vec![self.video.video_width(), self.video.video_height()]
    }
}

impl Camera {
    fn is_active(&self) -> bool {
        self.stream.get_tracks().iter().any(|t| {
            t.unchecked_into::<MediaStreamTrack>().ready_state()
                == web_sys::MediaStreamTrackState::Live
        })
    }
}

/// Maps a `getUserMedia` rejection to the camera error codes.
fn media_error(e: &JsValue) -> LivenessError {
    let name = js_error_name(e).unwrap_or_default();
    LivenessError::new(
        ErrorCode::from_media_error(&name),
        format!("camera: {name}: {}", js_message(e)),
    )
}

async fn grab_frames(video: &HtmlVideoElement, count: u32, interval_ms: u32) -> Result<Array> {
    let (width, height) = (video.video_width(), video.video_height());
    let document = window()?
        .document()
        .ok_or_else(|| LivenessError::new(ErrorCode::CameraFailed, "no document"))?;
    let canvas: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(|e| LivenessError::new(ErrorCode::CameraFailed, js_message(&e)))?
        .unchecked_into();
    canvas.set_width(width);
    canvas.set_height(height);
    let options = js_sys::Object::new();
    let _ = Reflect::set(&options, &"willReadFrequently".into(), &JsValue::TRUE);
    let context: CanvasRenderingContext2d = canvas
        .get_context_with_context_options("2d", &options)
        .ok()
        .flatten()
        .ok_or_else(|| LivenessError::new(ErrorCode::CameraFailed, "no 2d canvas context"))?
        .unchecked_into();
    let frames = Array::new();
    for i in 0..count {
        if i > 0 {
            sleep(interval_ms.min(i32::MAX as u32) as i32).await?;
        }
        if (video.video_width(), video.video_height()) != (width, height) {
            return Err(LivenessError::new(
                ErrorCode::CameraFailed,
                format!("frame {i}: the camera changed resolution during capture"),
            ));
        }
        context
            .draw_image_with_html_video_element(video, 0.0, 0.0)
            .map_err(|e| {
                LivenessError::new(
                    ErrorCode::CameraFailed,
                    format!("frame {i}: {}", js_message(&e)),
                )
            })?;
        let image = context
            .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
            .map_err(|e| {
                LivenessError::new(
                    ErrorCode::CameraFailed,
                    format!("frame {i}: {}", js_message(&e)),
                )
            })?;
        frames.push(&image);
    }
    Ok(frames)
}
