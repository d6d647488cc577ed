//! Prompt routers: a Converse call addressed to a router ARN is answered by the model the
//! router picks, named in the answer's `trace.promptRouter.invokedModelId`.
//!
//! The model is the directive's `invoked=`, else a fixed choice per router family, as an
//! inference profile in the router's own region and account.

/// How a call's model id is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// Not a prompt router: the model itself answers.
    Direct,
    /// A prompt router that chose this model.
    Routed(String),
    /// A prompt router ARN that names no router.
    Unknown,
}

const DEFAULT_ROUTER: &str = "default-prompt-router/";
const CUSTOM_ROUTER: &str = "prompt-router/";

/// What a call to `model_id` is served by; `invoked` is the directive's choice for a router.
pub fn resolve(model_id: &str, invoked: Option<&str>) -> Routing {
    let Some(router) = Router::parse(model_id) else {
        return Routing::Direct;
    };
    if router.name.is_empty() {
        return Routing::Unknown;
    }
    Routing::Routed(match invoked {
        Some(id) => id.to_owned(),
        None => router.default_model(),
    })
}

/// `arn:PARTITION:bedrock:REGION:ACCOUNT:default-prompt-router/NAME` or
/// `arn:PARTITION:bedrock:REGION:ACCOUNT:prompt-router/ID`.
struct Router<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    /// The default router's name (`anthropic.claude:1`), or the custom router's id.
    name: &'a str,
    default: bool,
}

impl<'a> Router<'a> {
    fn parse(arn: &'a str) -> Option<Router<'a>> {
        let mut fields = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("bedrock"), Some(region), Some(account)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return None;
        };
        let resource = fields.next()?;
        let (name, default) = match resource.strip_prefix(DEFAULT_ROUTER) {
            Some(name) => (name, true),
            None => (resource.strip_prefix(CUSTOM_ROUTER)?, false),
        };
        Some(Router {
            partition,
            region,
            account,
            name,
            default,
        })
    }

    /// The model a router answers with when the directive does not choose one.
    fn default_model(&self) -> String {
        let profile = if self.default && self.name.starts_with("anthropic.claude") {
            "us.anthropic.claude-3-5-haiku-20241022-v1:0"
        } else if self.default && self.name.starts_with("meta.llama") {
            "us.meta.llama3-1-8b-instruct-v1:0"
        } else {
            "us.amazon.nova-lite-v1:0"
        };
        format!(
            "arn:{}:bedrock:{}:{}:inference-profile/{profile}",
            self.partition, self.region, self.account
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "arn:aws:bedrock:us-east-1:123456789012";

    fn routed(id: &str) -> String {
        format!("{ACCOUNT}:inference-profile/{id}")
    }

    #[test]
    fn default_routers_pick_by_family() {
        for (name, model) in [
            (
                "anthropic.claude:1",
                "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            ),
            ("meta.llama:1", "us.meta.llama3-1-8b-instruct-v1:0"),
            ("amazon.nova:1", "us.amazon.nova-lite-v1:0"),
        ] {
            assert_eq!(
                resolve(&format!("{ACCOUNT}:default-prompt-router/{name}"), None),
                Routing::Routed(routed(model)),
                "{name}"
            );
        }
        assert_eq!(
            resolve(
                "arn:aws:bedrock:eu-west-3:000000000001:default-prompt-router/meta.llama:1",
                None
            ),
            Routing::Routed(
                "arn:aws:bedrock:eu-west-3:000000000001:inference-profile/us.meta.llama3-1-8b-instruct-v1:0"
                    .to_owned()
            )
        );
    }

    #[test]
    fn custom_routers_and_the_directive() {
        assert_eq!(
            resolve(&format!("{ACCOUNT}:prompt-router/abc123"), None),
            Routing::Routed(routed("us.amazon.nova-lite-v1:0"))
        );
        assert_eq!(
            resolve(
                &format!("{ACCOUNT}:default-prompt-router/anthropic.claude:1"),
                Some("anthropic.claude-3-5-sonnet-20240620-v1:0")
            ),
            Routing::Routed("anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned())
        );
    }

    #[test]
    fn empty_names_and_other_models() {
        for arn in [
            format!("{ACCOUNT}:default-prompt-router/"),
            format!("{ACCOUNT}:prompt-router/"),
        ] {
            assert_eq!(resolve(&arn, Some("m")), Routing::Unknown, "{arn}");
        }
        for id in [
            "amazon.nova-micro-v1:0",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x",
            "arn:aws:sagemaker:us-east-1:123456789012:prompt-router/x",
            "default-prompt-router/anthropic.claude:1",
        ] {
            assert_eq!(resolve(id, Some("m")), Routing::Direct, "{id}");
        }
    }
}
