//! `report.html`: one self-contained page for people who will not open a CSV: the summary, a
//! chart of outcomes per setting (inline SVG), the drift against a baseline, and a sortable,
//! filterable table of rows. No network requests: styles, chart and script are all inline.

use std::fmt::Write as _;
use std::path::Path;

use super::drift::{Change, DriftSummary};
use super::summary::Summary;
use crate::engine::events::{Outcome, Row};
use crate::error::{Error, Result};

/// The most rows the table holds; past that, failures and pending changes come first.
pub(crate) const TABLE_ROWS: usize = 5000;

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Changed => "#2b7bb9",
        Outcome::Compliant => "#3a9d5d",
        Outcome::WouldChange => "#e0a526",
        Outcome::Skipped => "#9aa0a6",
        Outcome::Conflict => "#a05cbf",
        Outcome::Unfinished => "#e8710a",
        Outcome::Blocked => "#8b1e1e",
        Outcome::Excepted => "#6b8e23",
        Outcome::Failed => "#d64545",
    }
}

fn chart(summary: &Summary) -> String {
    let settings = &summary.by_setting;
    let height = 40 * settings.len().max(1) + 40;
    let mut svg = format!(r#"<svg width="720" height="{height}" role="img" aria-label="Outcomes per setting">"#);
    for (i, (setting, outcomes)) in settings.iter().enumerate() {
        let y = 10 + i * 40;
        let total: u64 = outcomes.values().sum::<u64>().max(1);
        let setting = setting.name();
        let _ = write!(svg, r#"<text x="0" y="{}" font-size="13">{setting}</text>"#, y + 18);
        let mut x = 150.0;
        for outcome in Outcome::ALL {
            let count = outcomes.get(&outcome).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let width = 540.0 * count as f64 / total as f64;
            let _ = write!(
                svg,
                r#"<rect class="bar" data-outcome="{name}" x="{x:.1}" y="{y}" width="{width:.1}" height="26" fill="{fill}"><title>{setting} {name}: {count}</title></rect>"#,
                name = outcome.name(),
                fill = colour(outcome),
            );
            x += width;
        }
    }
    let legend_y = height - 12;
    let mut x = 0;
    for outcome in Outcome::ALL {
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{legend_y}" font-size="12">{}</text>"#,
            legend_y - 10,
            colour(outcome),
            x + 16,
            outcome.name()
        );
        x += 115;
    }
    svg.push_str("</svg>");
    svg
}

/// The rows the table shows (failures and pending changes first), and how many there are.
fn rows(directory: &Path) -> Result<(Vec<Row>, usize)> {
    let path = directory.join("results.csv");
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| Error::Io { context: format!("cannot read {}", path.display()), source: e.into() })?;
    let mut urgent = Vec::new();
    let mut rest = Vec::new();
    let mut total = 0;
    for row in reader.deserialize::<Row>().map_while(|r| r.ok()) {
        total += 1;
        let pressing = matches!(
            row.outcome,
            Outcome::Failed
                | Outcome::Blocked
                | Outcome::Unfinished
                | Outcome::Conflict
                | Outcome::WouldChange
                | Outcome::Changed
        );
        if pressing && urgent.len() < TABLE_ROWS {
            urgent.push(row);
        } else if !pressing && rest.len() < TABLE_ROWS {
            rest.push(row);
        }
    }
    urgent.extend(rest);
    urgent.truncate(TABLE_ROWS);
    Ok((urgent, total))
}

/// The table's cells of one row.
fn cells(row: &Row) -> [String; 10] {
    let value = |v: Option<crate::settings::Value>| v.map(|v| v.name()).unwrap_or_default().to_string();
    [
        row.line.to_string(),
        row.identity.clone(),
        row.setting.name().into(),
        row.control.clone(),
        value(row.before),
        row.desired.name().into(),
        value(row.after),
        row.outcome.name().into(),
        row.error_code.to_string(),
        row.error_message.clone(),
    ]
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#202124}h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left}\
th{cursor:pointer;background:#f4f6f8;position:sticky;top:0}td.o{font-weight:600}.cards{display:flex;gap:12px;flex-wrap:wrap}\
.card{border:1px solid #dadce0;border-radius:8px;padding:10px 16px;min-width:110px}.card b{display:block;font-size:22px}\
input,select{font-size:13px;padding:4px;margin-right:8px}.muted{color:#5f6368}";

const SCRIPT: &str = r#"
const table=document.getElementById('rows'),body=table.tBodies[0],filter=document.getElementById('filter'),pick=document.getElementById('outcome');
function apply(){const q=filter.value.toLowerCase(),o=pick.value;let shown=0;for(const r of body.rows){const ok=(!o||r.dataset.outcome===o)&&(!q||r.textContent.toLowerCase().includes(q));r.style.display=ok?'':'none';if(ok)shown++;}document.getElementById('shown').textContent=shown;}
filter.addEventListener('input',apply);pick.addEventListener('change',apply);
table.tHead.addEventListener('click',e=>{const th=e.target.closest('th');if(!th)return;const i=th.cellIndex,dir=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=dir;
const num=i===0;const rows=[...body.rows].sort((a,b)=>{const x=a.cells[i].textContent,y=b.cells[i].textContent;const c=num?(+x)-(+y):x.localeCompare(y);return dir==='asc'?c:-c;});rows.forEach(r=>body.appendChild(r));});
apply();
"#;

/// Writes `report.html` from the summary, `results.csv` and the drift.
pub(crate) fn write(directory: &Path, summary: &Summary, drift: &[Change]) -> Result<()> {
    let (rows, total) = rows(directory)?;
    let mut page = String::new();
    heading(&mut page, summary);
    cards(&mut page, summary);
    page.push_str("<h2>Outcomes per setting</h2>");
    page.push_str(&chart(summary));
    if let Some(usage) = &summary.smtp_auth_usage {
        page.push_str(&super::usage::html_section(usage));
    }
    if let Some(drift_summary) = &summary.drift {
        drift_section(&mut page, drift_summary, drift);
    }
    warnings(&mut page, &summary.warnings);
    rows_section(&mut page, &rows, total);
    let _ = write!(page, "<script>{SCRIPT}</script></body></html>");
    crate::support::files::write_atomic(directory, "report.html", page.as_bytes())
        .map_err(Error::io(format!("cannot write report.html in {}", directory.display())))
}

/// The page's head and title, and the line under it: tenant, profile, desired state, exit code.
fn heading(page: &mut String, summary: &Summary) {
    let started = &summary.started_at;
    let title =
        format!("remediate {} — {} UTC", summary.command, started.get(..19).unwrap_or(started).replace('T', " "));
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(
        page,
        "<h1>{}</h1><p class=\"muted\">tenant {} · profile {} · desired {} · exit code {}</p>",
        escape(&title),
        escape(&summary.tenant_id),
        escape(summary.profile.as_deref().unwrap_or("(none)")),
        escape(&summary.desired),
        summary.exit_code
    );
}

/// A card for each count: targets, each outcome, rows rejected.
fn cards(page: &mut String, summary: &Summary) {
    page.push_str("<div class=\"cards\">");
    let _ = write!(page, "<div class=\"card\" data-count=\"targets\"><b>{}</b>targets</div>", summary.targets);
    for outcome in Outcome::ALL {
        let _ = write!(
            page,
            "<div class=\"card\" data-count=\"{0}\"><b>{1}</b>{0}</div>",
            outcome.name(),
            summary.counts.get(&outcome).copied().unwrap_or(0)
        );
    }
    let _ = write!(
        page,
        "<div class=\"card\" data-count=\"rejected_rows\"><b>{}</b>rows rejected</div>",
        summary.rejected_rows
    );
    page.push_str("</div>");
}

/// The drift since the baseline: its counts, and a table of what changed.
fn drift_section(page: &mut String, drift_summary: &DriftSummary, drift: &[Change]) {
    let _ = write!(
        page,
        "<h2>Drift since {}</h2><p>newly non-compliant <b>{}</b> · fixed <b>{}</b> · new mailboxes <b>{}</b> · removed mailboxes <b>{}</b></p>",
        escape(&drift_summary.baseline),
        drift_summary.newly_non_compliant,
        drift_summary.fixed,
        drift_summary.new_mailboxes,
        drift_summary.removed_mailboxes
    );
    page.push_str(
        "<table id=\"drift\"><thead><tr><th>change</th><th>identity</th><th>setting</th></tr></thead><tbody>",
    );
    for change in drift.iter().take(TABLE_ROWS) {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            change.kind.name(),
            escape(&change.identity),
            change.setting.map(|s| s.name()).unwrap_or_default()
        );
    }
    page.push_str("</tbody></table>");
}

/// The run's warnings, when it had any.
fn warnings(page: &mut String, warnings: &[String]) {
    if !warnings.is_empty() {
        page.push_str("<h2>Warnings</h2><ul>");
        for warning in warnings {
            let _ = write!(page, "<li>{}</li>", escape(warning));
        }
        page.push_str("</ul>");
    }
}

/// The table of rows (`total` in results.csv, `rows` of them shown), with its filter and outcome
/// picker.
fn rows_section(page: &mut String, rows: &[Row], total: usize) {
    let _ = write!(
        page,
        "<h2>Rows</h2><p><input id=\"filter\" placeholder=\"filter…\"><select id=\"outcome\"><option value=\"\">every outcome</option>"
    );
    for outcome in Outcome::ALL {
        let _ = write!(page, "<option>{}</option>", outcome.name());
    }
    let _ = write!(page, "</select><span id=\"shown\">{}</span> shown of {} in the table", rows.len(), rows.len());
    if total > rows.len() {
        let _ = write!(page, " ({total} in results.csv; failures and changes first)");
    }
    page.push_str("</p><table id=\"rows\"><thead><tr>");
    let columns = [
        "line",
        "identity",
        "setting",
        "control",
        "before",
        "desired",
        "after",
        "outcome",
        "error_code",
        "error_message",
    ];
    for column in columns {
        let _ = write!(page, "<th>{column}</th>");
    }
    page.push_str("</tr></thead><tbody>");
    for row in rows {
        let _ = write!(page, "<tr data-outcome=\"{}\">", row.outcome.name());
        for (column, value) in columns.iter().zip(cells(row)) {
            let class = if *column == "outcome" {
                format!(" class=\"o\" style=\"color:{}\"", colour(row.outcome))
            } else {
                String::new()
            };
            let _ = write!(page, "<td{class}>{}</td>", escape(&value));
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>");
}

/// A page of its own for a command that only reads: its title, a line under it, and `body`.
pub(crate) fn write_page(directory: &Path, title: &str, subtitle: &str, body: &str) -> Result<()> {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1><p class=\"muted\">{}</p>{body}</body></html>",
        escape(subtitle)
    );
    crate::support::files::write_atomic(directory, "report.html", page.as_bytes())
        .map_err(Error::io(format!("cannot write report.html in {}", directory.display())))
}

/// The page of a `usage` run: the sign-in section and a table of every user of the log.
pub(crate) fn write_usage_page(directory: &Path, tenant_id: &str, usage: &super::usage::UsageSummary) -> Result<()> {
    write_page(
        directory,
        "remediate usage — SMTP AUTH sign-ins",
        &format!("tenant {tenant_id}"),
        &super::usage::html_section(usage),
    )
}
