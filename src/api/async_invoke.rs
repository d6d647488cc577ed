//! The asynchronous invocation family: `StartAsyncInvoke`, `ListAsyncInvokes` and
//! `GetAsyncInvoke` (`/async-invoke`). The work runs later, out of the meter's sight: the calls
//! are forwarded and counted, with no usage to read.

use http::Method;

use super::{Answer, Asked, Family, Operation, Route};

pub struct AsyncInvoke;

impl Family for AsyncInvoke {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        match (method, segments) {
            (&Method::POST | &Method::GET, ["async-invoke"])
            | (&Method::GET, ["async-invoke", _]) => Some(Route {
                operation: Operation::Other,
                model_id: None,
                family: &AsyncInvoke,
            }),
            _ => None,
        }
    }

    fn answer(&self, _op: Operation, _asked: &Asked) -> Answer {
        Answer::Unmetered
    }
}
