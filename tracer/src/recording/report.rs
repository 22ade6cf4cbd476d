//! `tracer report FILE`: the reports of a recording, rendered again through
//! the same [`publish`] as a live trace. Reads one file: no root, no target.

use crate::{cli::ReportArgs, output::Outputs, report::publish::publish};

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let trace = super::load(&args.file)?;
    let outputs = Outputs::prepare(
        args.outputs.json.clone(),
        args.outputs.output.clone(),
        args.outputs.html.clone(),
    )?
    .grouping_stalls_by(args.outputs.group_by);
    publish(&trace, &outputs, args.outputs.quiet)?;
    Ok(())
}
