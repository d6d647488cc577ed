//! One simulated call: everything the operation builders need to produce the answer, and the
//! hook that records its usage as ground truth once it has been sent.

use std::sync::Arc;

use super::directives::Directive;
use super::eventstream::Pacing;
use super::stats::Recorder;
use super::usage::Usage;

pub struct Call {
    /// The model id label as decoded (or named in the body, for the operations that name it
    /// there; or chosen by a prompt router); empty for operations not addressed to a model.
    /// Usage is recorded under it.
    pub model: String,
    /// The model a prompt router chose, for the answer's `trace`; `None` when the call was not
    /// addressed to a router.
    pub invoked_model: Option<String>,
    pub usage: Usage,
    /// Service tier to echo, from the directive or else from the request.
    pub tier: Option<String>,
    pub directive: Directive,
    /// Distinguishes calls, for ids in the answer.
    pub seq: u64,
    pub recorder: Arc<Recorder>,
}

impl Call {
    /// The answer text, one part per stream delta so streamed and whole answers read the same.
    pub fn parts(&self) -> Vec<String> {
        (1..=self.directive.chunks())
            .map(|i| format!("Simulated reply part {i}. "))
            .collect()
    }

    pub fn text(&self) -> String {
        self.parts().concat()
    }

    /// Why the answer says the model stopped.
    pub fn stop_reason(&self) -> &'static str {
        self.directive.stop.unwrap_or("end_turn")
    }

    pub fn pacing(&self) -> Pacing {
        Pacing {
            ttft: self.directive.ttft(),
            gap: self.directive.gap(),
        }
    }

    /// Latency reported for an answer of `frames` stream frames (0 for a whole answer): the
    /// directive's delay plus the pacing, which is all the time the simulator spends.
    pub fn latency_ms(&self, frames: usize) -> u64 {
        let delay = self.directive.delay_ms.unwrap_or(0);
        if frames == 0 {
            delay
        } else {
            delay.saturating_add(self.pacing().span_ms(frames))
        }
    }

    /// Milliseconds from the request to the first stream frame.
    pub fn first_byte_ms(&self) -> u64 {
        self.directive
            .delay_ms
            .unwrap_or(0)
            .saturating_add(self.directive.ttft_ms.unwrap_or(0))
    }

    pub fn record_usage(&self) {
        self.recorder.usage_sent(&self.model, &self.usage);
    }

    /// The recording hook for a stream's producer, which outlives the handler.
    pub fn usage_recorder(&self) -> impl FnOnce() + Send + 'static {
        let (recorder, model, usage) = (self.recorder.clone(), self.model.clone(), self.usage);
        move || recorder.usage_sent(&model, &usage)
    }
}
