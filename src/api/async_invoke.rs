//! The asynchronous invocation family: `StartAsyncInvoke` (`POST /async-invoke`), and
//! `ListAsyncInvokes` and `GetAsyncInvoke` (`GET /async-invoke`, `GET /async-invoke/{arn}`).
//! The work runs later, out of the meter's sight, so a job is metered when Bedrock accepts it,
//! from what the request asks for: Nova Reel's seconds of video (`durationSeconds`, or six
//! seconds per shot of a manual multi-shot video). The model is the body's `modelId`.

use http::Method;
use serde::Deserialize;

use super::{Answer, Asked, BadBody, Family, Operation, Route, body_model};
use crate::pricing::billing_units::Units;

pub struct AsyncInvoke;

impl Family for AsyncInvoke {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        let operation = match (method, segments) {
            (&Method::POST, ["async-invoke"]) => Operation::StartAsyncInvoke,
            (&Method::GET, ["async-invoke"]) | (&Method::GET, ["async-invoke", _]) => {
                Operation::Other
            }
            _ => return None,
        };
        Some(Route {
            operation,
            model_id: None,
            family: &AsyncInvoke,
        })
    }

    fn request(
        &self,
        op: Operation,
        _model_id: Option<&str>,
        body: &[u8],
    ) -> Result<Asked, BadBody> {
        if op != Operation::StartAsyncInvoke {
            return Ok(Asked::default());
        }
        let job: Job<'_> = serde_json::from_slice(body)
            .map_err(|e| BadBody(format!("The request body is not a valid request: {e}")))?;
        let video_seconds = job.model_input.map_or(0, |i| i.video_seconds());
        Ok(Asked {
            model_id: Some(body_model(job.model_id)?),
            units: Units {
                video_seconds,
                ..Units::default()
            },
            ..Asked::default()
        })
    }

    fn answer(&self, op: Operation, _asked: &Asked) -> Answer {
        match op {
            Operation::StartAsyncInvoke => Answer::Accepted,
            _ => Answer::Unmetered,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job<'a> {
    #[serde(borrow, default)]
    model_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    model_input: Option<ModelInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelInput {
    #[serde(default)]
    video_generation_config: Option<VideoConfig>,
    #[serde(default)]
    multi_shot_manual_params: Option<ManualShots>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoConfig {
    duration_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct ManualShots {
    shots: Vec<serde::de::IgnoredAny>,
}

/// Nova Reel's shots are six seconds each.
pub const SECONDS_PER_SHOT: u64 = 6;

impl ModelInput {
    /// The seconds of video a job asks for: its `durationSeconds` (a single shot, or an
    /// automated multi-shot video), else six per shot of a manual multi-shot video; 0 for a job
    /// that is not a video (another model's asynchronous work).
    fn video_seconds(&self) -> u64 {
        if let Some(s) = self
            .video_generation_config
            .as_ref()
            .and_then(|c| c.duration_seconds)
        {
            return s;
        }
        self.multi_shot_manual_params.as_ref().map_or(0, |m| {
            (m.shots.len() as u64).saturating_mul(SECONDS_PER_SHOT)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(body: &str) -> u64 {
        AsyncInvoke
            .request(Operation::StartAsyncInvoke, None, body.as_bytes())
            .unwrap()
            .units
            .video_seconds
    }

    #[test]
    fn video_seconds_from_the_job() {
        assert_eq!(
            seconds(
                r#"{"modelId":"amazon.nova-reel-v1:1","modelInput":{"taskType":"TEXT_VIDEO","textToVideoParams":{"text":"a cat"},"videoGenerationConfig":{"durationSeconds":6,"fps":24,"dimension":"1280x720"}},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://b/"}}}"#
            ),
            6
        );
        assert_eq!(
            seconds(
                r#"{"modelId":"amazon.nova-reel-v1:1","modelInput":{"taskType":"MULTI_SHOT_AUTOMATED","multiShotAutomatedParams":{"text":"x"},"videoGenerationConfig":{"durationSeconds":120}}}"#
            ),
            120
        );
        assert_eq!(
            seconds(
                r#"{"modelId":"amazon.nova-reel-v1:1","modelInput":{"taskType":"MULTI_SHOT_MANUAL","multiShotManualParams":{"shots":[{"text":"a"},{"text":"b"},{"text":"c"}]},"videoGenerationConfig":{"fps":24}}}"#
            ),
            18
        );
        assert_eq!(seconds(r#"{"modelId":"m","modelInput":{}}"#), 0);
        let asked = AsyncInvoke
            .request(
                Operation::StartAsyncInvoke,
                None,
                br#"{"modelId":"amazon.nova-reel-v1:0"}"#,
            )
            .unwrap();
        assert_eq!(asked.model_id.as_deref(), Some("amazon.nova-reel-v1:0"));
        for bad in [&b"{"[..], br#"{"modelInput":{}}"#, br#"{"modelId":""}"#] {
            assert!(
                AsyncInvoke
                    .request(Operation::StartAsyncInvoke, None, bad)
                    .is_err()
            );
        }
        // Listing and getting jobs read no body.
        assert_eq!(
            AsyncInvoke.request(Operation::Other, None, b"garbage"),
            Ok(Asked::default())
        );
    }
}
