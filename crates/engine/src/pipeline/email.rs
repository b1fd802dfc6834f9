//! The email node (the original's Send Email): recipients, subject and body
//! are Jinja over the run's variables; every address is checked; the email
//! is queued with the turn (sent by the `email.send` job, so a failed turn
//! sends nothing and a slow mail server holds no reply). Passes its input
//! through.

use std::str::FromStr;

use domain::jobs::EmailPayload;
use domain::pipeline::SendEmailParams;

use super::{Done, NodeCx, template};
use crate::TurnError;

/// The addresses in a rendered recipient list (commas, semicolons or spaces).
pub(super) fn recipients(list: &str) -> Result<Vec<String>, TurnError> {
    let mut out = Vec::new();
    for a in list
        .split([',', ';', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        lettre::Address::from_str(a).map_err(|_| {
            TurnError::Config(format!("recipient_list: {a:?} is not an email address"))
        })?;
        if !out.iter().any(|o: &String| o.eq_ignore_ascii_case(a)) {
            out.push(a.to_string());
        }
    }
    if out.is_empty() {
        return Err(TurnError::Config(
            "recipient_list: no recipient after rendering".into(),
        ));
    }
    Ok(out)
}

pub(super) fn render(cx: &NodeCx<'_, '_>, p: &SendEmailParams) -> Result<Done, TurnError> {
    let to = recipients(&template::field(cx, "recipient_list", &p.recipient_list)?)?;
    let subject = template::field(cx, "subject", &p.subject)?;
    if subject.contains(['\r', '\n']) {
        return Err(TurnError::Config("subject: must be one line".into()));
    }
    let body = template::field(cx, "body", &p.body)?;
    Ok(Done {
        output: cx.input.clone(),
        emails: vec![EmailPayload { to, subject, body }],
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_lists() {
        assert_eq!(
            recipients("a@x.org, b@y.org;A@x.org").unwrap(),
            ["a@x.org", "b@y.org"]
        );
        assert!(
            recipients("a@x.org, nope")
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
        assert!(recipients(" , ").is_err());
    }
}
