//! `console_pages`: the console's server time per page at the bench's data
//! size. The team's sessions (and extra chatbots) come from the shared seed;
//! messages, traces, usage records and a tag are added here by SQL. One
//! signed-in client then times each page with sequential requests, beside
//! `GET /healthz` timed the same way.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hyper::header::{HeaderMap, SET_COOKIE};
use uuid::Uuid;

use crate::db::{self, Mix, Val};
use crate::http::{Req, Sample, ServerSampler, per_request, scrape};
use crate::report::Row;
use crate::{Bench, progress};

/// The demo team's slug: every console URL starts with `/a/demo/`.
const TEAM: &str = "demo";

/// Chatbots made beside the demo one, so the chatbot filter picks a share.
const EXTRA_BOTS: usize = 4;

/// Seeded sessions spread over this many days (the usage page shows 30).
const SPAN_DAYS: i64 = 365;

/// The tag a share of the sessions carries, for the tag filter.
const TAG: &str = "bench-vip";

const TARGET: &str = "p99 < 100 ms server time";

/// A pipeline with no model: the extra chatbots only need to exist.
const EXTRA_BOT: &str = r#"name: NAME
config:
  pipeline:
    nodes:
      - {id: start, type: start}
      - id: py
        type: code
        params:
          code: |
            def main(input, **kwargs):
                return input
      - {id: end, type: end}
    edges:
      - {from: start, to: py}
      - {from: py, to: end}
"#;

/// How long each page is timed.
#[derive(Debug, Clone, Copy)]
struct Timing {
    warmup: Duration,
    /// At least this long and `min_samples` requests, at most `cap`.
    duration: Duration,
    min_samples: usize,
    cap: Duration,
}

impl Timing {
    fn new(quick: bool) -> Timing {
        if quick {
            Timing {
                warmup: Duration::from_millis(500),
                duration: Duration::from_secs(2),
                min_samples: 100,
                cap: Duration::from_secs(15),
            }
        } else {
            Timing {
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(5),
                min_samples: 200,
                cap: Duration::from_secs(40),
            }
        }
    }
}

/// One page to time.
struct Page {
    name: &'static str,
    path: String,
    note: String,
}

/// The value of cookie `name` among an answer's `Set-Cookie` lines.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// Percent-encodes a form value (all but unreserved characters).
fn form_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `href` of the page's `rel="next"` link ("Older"), unescaped.
fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\"")?;
    let tag = &html[html[..at].rfind("<a ")?..at];
    let start = tag.find("href=\"")? + 6;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "=")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

impl Bench<'_> {
    /// The sessions the list rows read, seeded once per run: spread over a
    /// year, five chatbots, statuses and channels (see [`Mix`]).
    pub(crate) async fn seed_sessions(&mut self) -> Result<Duration> {
        if let Some(took) = self.seeded {
            return Ok(took);
        }
        let mut chatbots = vec![self.demo.chatbot_row_id];
        for i in 1..=EXTRA_BOTS {
            let file = self.inst.data_dir.join(format!("bench-bot-{i}.yaml"));
            std::fs::write(&file, EXTRA_BOT.replacen("NAME", &format!("Bench {i}"), 1))?;
            let path = file.to_string_lossy();
            let out = self
                .inst
                .cli(&["chatbot", "apply", "--team", TEAM, "--file", &path], &[])
                .await?;
            let id = out
                .lines()
                .rev()
                .map(str::trim)
                .find_map(|l| Uuid::parse_str(l).ok())
                .ok_or_else(|| anyhow!("chatbot apply printed no id: {out}"))?;
            chatbots.push(
                self.conn
                    .i64(
                        "SELECT id FROM chatbots WHERE public_id = ?",
                        &[Val::Uuid(id)],
                    )
                    .await?,
            );
        }
        let n = self.plan.sessions;
        progress(&format!("seeding {n} sessions"));
        let mix = Mix {
            chatbots,
            span: chrono::Duration::days(SPAN_DAYS),
        };
        let took = db::seed_sessions(&mut self.conn, &self.demo, n, &mix).await?;
        progress(&format!("seeded in {:.1} s", took.as_secs_f64()));
        self.seeded = Some(took);
        Ok(took)
    }

    /// Signs in as the demo team's owner (the banner's console login) and
    /// returns the `Cookie` header the pages need.
    async fn console_cookie(&self) -> Result<String> {
        let (email, password) = self.server.console_login()?;
        let mut c = self.client();
        let (status, headers, _) = c.exchange(&Req::get("/login/")).await?;
        let csrf = set_cookie(&headers, "csrftoken")
            .ok_or_else(|| anyhow!("GET /login/ ({status}) set no csrftoken cookie"))?;
        let form = format!(
            "email={}&password={}&csrfmiddlewaretoken={}",
            form_value(&email),
            form_value(&password),
            form_value(&csrf)
        );
        let req =
            Req::post_form("/login/", &form).header("cookie", &format!("csrftoken={csrf}"))?;
        let (status, headers, body) = c.exchange(&req).await?;
        let session = set_cookie(&headers, "sessionid").ok_or_else(|| {
            anyhow!(
                "POST /login/ answered {status} without a sessionid cookie: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )
        })?;
        let csrf = set_cookie(&headers, "csrftoken").unwrap_or(csrf);
        Ok(format!("csrftoken={csrf}; sessionid={session}"))
    }

    /// Sequential requests: a warm-up whose answers are dropped, then at
    /// least `min_samples` requests and `duration`, at most `cap`.
    async fn time_requests(&self, req: &Req, t: Timing) -> Result<Sample> {
        let mut client = self.client();
        let warm_until = Instant::now() + t.warmup;
        while Instant::now() < warm_until {
            client.send(req).await?;
        }
        let before = scrape(self.probe.addr).await?;
        let sampler = ServerSampler::start(self.probe.pid);
        let t0 = Instant::now();
        let mut s = Sample {
            concurrency: 1,
            ..Default::default()
        };
        loop {
            let elapsed = t0.elapsed();
            let taken = s.latencies_us.len();
            if elapsed >= t.cap || (taken >= t.min_samples && elapsed >= t.duration) {
                break;
            }
            let started = Instant::now();
            let answered = client.send(req).await;
            s.latencies_us
                .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            match answered {
                Ok((status, _)) if status.is_success() => s.ok += 1,
                _ => s.errors += 1,
            }
        }
        s.elapsed = t0.elapsed();
        let seen = sampler.finish().await;
        s.peak_rss_kib = seen.peak_rss_kib;
        s.server_cpu_pct = seen.cpu_pct;
        s.statements_per_request = per_request(before, scrape(self.probe.addr).await?);
        s.latencies_us.sort_unstable();
        Ok(s)
    }

    /// Tags, messages, traces and usage records on the seeded sessions, by
    /// SQL: every tenth session has ten messages (five turns, each with a
    /// trace and two usage records); one session in a hundred is tagged.
    async fn seed_console_extras(&mut self) -> Result<String> {
        let t0 = Instant::now();
        let team = self.demo.team_id;
        let json = self.conn.empty_json();
        let now = chrono::Utc::now();
        let conn = &mut self.conn;
        let tag = conn
            .i64(
                &format!(
                    "INSERT INTO tags (team_id, name, is_system, category, created_by, created_at) \
                     VALUES ({team}, ?, false, '', NULL, ?) RETURNING id"
                ),
                &[Val::Text(TAG.into()), Val::Time(now)],
            )
            .await?;
        let tagged = conn
            .exec(
                &format!(
                    "INSERT INTO session_tags (team_id, session_id, tag_id, user_id, created_at) \
                     SELECT team_id, id, {tag}, NULL, created_at FROM sessions \
                     WHERE team_id = {team} AND id % 100 = 7"
                ),
                &[],
            )
            .await?;
        let messages = conn
            .exec(
                &format!(
                    "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 9) \
                     INSERT INTO messages (team_id, session_id, role, content, summary, metadata, created_at) \
                     SELECT s.team_id, s.id, CASE WHEN n.k % 2 = 0 THEN 'human' ELSE 'ai' END, \
                     'bench message ' || n.k, NULL, {json}, s.created_at \
                     FROM sessions s, n WHERE s.team_id = {team} AND s.id % 10 = 0 ORDER BY s.id, n.k"
                ),
                &[],
            )
            .await?;
        let traces = conn
            .exec(
                &format!(
                    "INSERT INTO traces (team_id, session_id, chatbot_id, participant_id, version_number, \
                     status, duration_ms, input_message_id, output_message_id, error, llm_calls, created_at) \
                     SELECT m.team_id, m.session_id, s.chatbot_id, s.participant_id, 1, 'success', 120, \
                     m.id - 1, m.id, NULL, 1, m.created_at \
                     FROM messages m JOIN sessions s ON s.id = m.session_id \
                     WHERE m.team_id = {team} AND m.role = 'ai' AND m.content LIKE 'bench message %'"
                ),
                &[],
            )
            .await?;
        let usage = conn
            .exec(
                &format!(
                    "INSERT INTO usage_records (team_id, trace_id, session_id, chatbot_id, participant_id, \
                     source, service_kind, provider_kind, model_name, quantity, unit_price_e8, cost_e8, \
                     currency, confidence, created_at) \
                     SELECT t.team_id, t.id, t.session_id, t.chatbot_id, t.participant_id, 'chat', k.kind, \
                     'openai', 'gpt-4o-mini', 250, 15, 3750, 'USD', 'exact', t.created_at \
                     FROM traces t, (SELECT 'input' AS kind UNION ALL SELECT 'output') k \
                     WHERE t.team_id = {team} AND t.duration_ms = 120"
                ),
                &[],
            )
            .await?;
        // The server keeps the usage page's daily rollups as it writes; these
        // rows went in by SQL, so they are rolled up here as the migration
        // that made the rollups does (store::usage_rollups::recount).
        let day = |alias: &str| {
            if conn.is_pg() {
                format!("CAST(CAST({alias}.created_at AT TIME ZONE 'UTC' AS DATE) AS TEXT)")
            } else {
                format!("date({alias}.created_at)")
            }
        };
        let (m, s, u) = (day("m"), day("s"), day("u"));
        for sql in [
            format!("DELETE FROM usage_days WHERE team_id = {team}"),
            format!("DELETE FROM usage_active WHERE team_id = {team}"),
            format!(
                "INSERT INTO usage_days (team_id, day, chatbot_id, model, messages, sessions, tokens, cost_e8) \
                 SELECT team_id, day, chatbot_id, model, CAST(SUM(messages) AS BIGINT), \
                 CAST(SUM(sessions) AS BIGINT), CAST(SUM(tokens) AS BIGINT), CAST(SUM(cost_e8) AS BIGINT) FROM (\
                 SELECT m.team_id AS team_id, {m} AS day, s.chatbot_id AS chatbot_id, '' AS model, \
                 COUNT(*) AS messages, 0 AS sessions, 0 AS tokens, 0 AS cost_e8 \
                 FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.team_id = {team} \
                 AND m.role IN ('human', 'ai') AND s.status <> 'setup' GROUP BY m.team_id, {m}, s.chatbot_id \
                 UNION ALL SELECT s.team_id, {s}, s.chatbot_id, '', 0, COUNT(*), 0, 0 FROM sessions s \
                 WHERE s.team_id = {team} AND s.status <> 'setup' GROUP BY s.team_id, {s}, s.chatbot_id \
                 UNION ALL SELECT u.team_id, {u}, COALESCE(u.chatbot_id, 0), u.model_name, 0, 0, \
                 SUM(u.quantity), SUM(u.cost_e8) FROM usage_records u WHERE u.team_id = {team} \
                 GROUP BY u.team_id, {u}, COALESCE(u.chatbot_id, 0), u.model_name) x \
                 GROUP BY team_id, day, chatbot_id, model"
            ),
            format!(
                "INSERT INTO usage_active (team_id, day, chatbot_id, participant_id) \
                 SELECT DISTINCT m.team_id, {m}, s.chatbot_id, s.participant_id \
                 FROM messages m JOIN sessions s ON s.id = m.session_id \
                 WHERE m.team_id = {team} AND m.role = 'human' AND s.status <> 'setup'"
            ),
        ] {
            conn.exec(&sql, &[]).await?;
        }
        if conn.is_pg() {
            for table in [
                "session_tags",
                "messages",
                "traces",
                "usage_records",
                "usage_days",
                "usage_active",
            ] {
                conn.exec(&format!("ANALYZE {table}"), &[]).await?;
            }
        }
        Ok(format!(
            "{tagged} sessions tagged, {messages} messages, {traces} traces, {usage} usage records \
             added in {:.1} s",
            t0.elapsed().as_secs_f64()
        ))
    }

    /// The pages, in the table's order.
    async fn console_pages_list(&mut self, cookie: &str) -> Result<Vec<Page>> {
        let n = self.plan.sessions;
        let base = format!("/a/{TEAM}");
        let participant = format!("bench-participant-{}", n.div_ceil(10) / 2);
        let day = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d");
        let transcript = self
            .conn
            .text(
                &format!(
                    "SELECT external_id FROM sessions WHERE team_id = {} AND id % 10 = 0 \
                     ORDER BY id DESC LIMIT 1",
                    self.demo.team_id
                ),
                &[],
            )
            .await?;
        let first = Req::get(format!("{base}/sessions/")).header("cookie", cookie)?;
        let (status, html) = self.client().send(&first).await?;
        if !status.is_success() {
            bail!("GET {}/sessions/ answered {status}", base);
        }
        let older = next_link(&String::from_utf8_lossy(&html))
            .ok_or_else(|| anyhow!("the sessions list has no Older link"))?;
        let list = "first page of 50 with the total count";
        let share = |what: &str| format!("{list}; {what} of {n} sessions");
        let bot = self.bot;
        Ok(vec![
            Page {
                name: "console_chatbots",
                path: format!("{base}/chatbots/"),
                note: format!("{} chatbots", EXTRA_BOTS + 1),
            },
            Page {
                name: "console_chatbot",
                path: format!("{base}/chatbots/{bot}/"),
                note: "the demo chatbot's settings and versions".into(),
            },
            Page {
                name: "console_sessions",
                path: format!("{base}/sessions/"),
                note: format!("{list}; {n} sessions, no filter"),
            },
            Page {
                name: "console_sessions_by_chatbot",
                path: format!("{base}/sessions/?chatbot={bot}"),
                note: share("the demo chatbot: 20%"),
            },
            Page {
                name: "console_sessions_by_status",
                path: format!("{base}/sessions/?status=pending-review"),
                note: share("pending-review: 5%"),
            },
            Page {
                name: "console_sessions_by_channel",
                path: format!("{base}/sessions/?channel=telegram"),
                note: share("telegram: 10%"),
            },
            Page {
                name: "console_sessions_by_participant",
                path: format!("{base}/sessions/?participant={participant}"),
                note: share(&format!("{participant}: 10")),
            },
            Page {
                name: "console_sessions_by_tag",
                path: format!("{base}/sessions/?tag={TAG}"),
                note: share(&format!("tag {TAG}: 1%")),
            },
            Page {
                name: "console_sessions_by_day",
                path: format!("{base}/sessions/?from={day}&to={day}"),
                note: share(&format!("started on {day}: 1/{SPAN_DAYS}")),
            },
            Page {
                name: "console_sessions_older",
                path: format!("{base}/sessions/{older}"),
                note: "second page (the first page's Older link: keyset cursor, no count)".into(),
            },
            Page {
                name: "console_transcript",
                path: format!("{base}/sessions/{transcript}/"),
                note: "a session with 10 messages, 5 traces, 10 usage records".into(),
            },
            Page {
                name: "console_participants",
                path: format!("{base}/participants/"),
                note: format!(
                    "first page of 50 with the count; {} participants",
                    n.div_ceil(10)
                ),
            },
            Page {
                name: "console_usage",
                path: format!("{base}/usage/"),
                note: format!(
                    "last 30 days of a year of {n} sessions (every tenth with 10 messages, 5 traces, 10 usage records)"
                ),
            },
            Page {
                name: "console_team",
                path: format!("{base}/team/"),
                note: "members, API keys, providers".into(),
            },
        ])
    }

    /// Every console page, each on its own row, with `/healthz` timed the
    /// same way as the baseline.
    pub(crate) async fn console_pages(&mut self) -> Result<()> {
        let took = self.seed_sessions().await?;
        progress("console_pages: messages, traces, usage and tags");
        let extras = self.seed_console_extras().await?;
        let cookie = self.console_cookie().await?;
        let timing = Timing::new(self.args.quick);
        let pages = self.console_pages_list(&cookie).await?;
        progress("console_healthz");
        let health = self.time_requests(&Req::get("/healthz"), timing).await?;
        let base_p50 = health
            .percentile_ms(0.5)
            .ok_or_else(|| anyhow!("no /healthz sample"))?;
        self.rows.push(
            Row::from_sample("console_healthz", &health, "baseline of the console rows").note(
                format!(
                    "GET /healthz, sequential requests on one keep-alive connection, like every \
                     console row. Data: {} sessions seeded in {:.1} s; {extras}",
                    self.plan.sessions,
                    took.as_secs_f64()
                ),
            ),
        );
        for page in pages {
            progress(page.name);
            let req = Req::get(&page.path).header("cookie", &cookie)?;
            let (status, body) = self.client().send(&req).await?;
            if !status.is_success() {
                bail!(
                    "GET {} answered {status}: {}",
                    page.path,
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
            let s = self
                .time_requests(&req, timing)
                .await
                .with_context(|| format!("timing {}", page.path))?;
            self.rows.push(
                Row::from_sample(page.name, &s, TARGET)
                    .baseline_p50("console_healthz", base_p50)
                    .note(format!(
                        "GET {}: {}; {:.0} KiB page; {} samples",
                        page.path,
                        page.note,
                        body.len() as f64 / 1024.0,
                        s.latencies_us.len()
                    )),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_link_is_unescaped() {
        let html = r#"<a href="?chatbot=&amp;tag=&amp;cursor=abc&#x3d;" rel="next">Older</a>"#;
        assert_eq!(
            next_link(html).as_deref(),
            Some("?chatbot=&tag=&cursor=abc=")
        );
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_value("a@b.c d"), "a%40b.c%20d");
    }
}
