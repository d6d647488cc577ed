//! Model ids as clients call them: cross-region profile prefixes and Bedrock ARNs.

use super::units::Scope;

/// Cross-region profile prefixes, stripped when the full id is not in the card.
pub const PROFILE_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.", "global.",
];

/// The scope of a model id and the id without its profile prefix.
pub fn split_profile(id: &str) -> (Scope, &str) {
    for prefix in PROFILE_PREFIXES {
        if let Some(bare) = id.strip_prefix(prefix) {
            let scope = match prefix {
                "global." => Scope::Global,
                "us-gov." => Scope::UsGov,
                _ => Scope::Geo,
            };
            return (scope, bare);
        }
    }
    (Scope::InRegion, id)
}

/// The parts of a Bedrock ARN the pricing cares about:
/// `arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID` (the id may itself contain `:`).
pub(crate) struct Arn<'a> {
    pub region: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(s: &'a str) -> Option<Arn<'a>> {
        let rest = s.strip_prefix("arn:")?;
        let mut parts = rest.splitn(5, ':');
        let (_partition, service, region, _account) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if service != "bedrock" {
            return None;
        }
        let (resource_type, resource_id) = parts.next()?.split_once('/')?;
        Some(Arn {
            region,
            resource_type,
            resource_id,
        })
    }
}
