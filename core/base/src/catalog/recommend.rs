//! Which catalog models fit a device, costed by the memory planner from
//! each entry's shape before anything is downloaded.

use serde::{Deserialize, Serialize};

use super::CatalogEntry;
use crate::error::{Error, Result};
use crate::plan::{plan_shape, MemoryPlan};

/// What the app wants to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecommendRequest {
    /// Memory the model may use, in bytes: the device's available memory
    /// (Android `ActivityManager.MemoryInfo.availMem`, iOS
    /// `os_proc_available_memory()`), or a budget the app sets.
    pub budget_bytes: u64,
    /// Context length the app needs, in tokens.
    pub context_length: u32,
    /// Count the vision projector too (image input); models without one do not fit.
    pub with_projector: bool,
}

/// One catalog model costed for a [`RecommendRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The catalog entry's id.
    pub id: String,
    /// It fits the budget at the requested context.
    pub fits: bool,
    /// The configuration the planner chose (or the cheapest, when nothing
    /// fits), with its predicted peak; the projector's weights are counted
    /// in it when asked for. Its `fits` is this recommendation's. `None`
    /// when the shapes are beyond what the planner can cost (`reason` says so).
    pub plan: Option<MemoryPlan>,
    /// Model weights counted, in bytes.
    pub weights_bytes: u64,
    /// The weights are estimated from the shape (the file size is not in the catalog).
    pub weights_estimated: bool,
    /// Projector weights counted, in bytes (0 without images).
    pub projector_bytes: u64,
    /// Bytes to download (model, plus projector when asked for), if known.
    pub download_bytes: Option<u64>,
    /// Why it does not fit, in words; `None` when it fits.
    pub reason: Option<String>,
}

pub(super) fn recommend(entries: &[CatalogEntry], request: &RecommendRequest) -> Result<Vec<Recommendation>> {
    if request.budget_bytes == 0 || request.context_length == 0 {
        return Err(Error::InvalidOption {
            name: "recommend",
            value: format!("budget {} bytes, context {} tokens", request.budget_bytes, request.context_length),
            expected: "a budget above 0 bytes and a context of at least 1 token".into(),
        });
    }
    let mut out: Vec<Recommendation> = entries.iter().map(|e| costed(e, request)).collect();
    let peak = |r: &Recommendation| r.plan.as_ref().map_or(u64::MAX, |p| p.predicted_peak_bytes);
    out.sort_by(|a, b| match (a.fits, b.fits) {
        (true, true) => b.weights_bytes.cmp(&a.weights_bytes),
        (false, false) => peak(a).cmp(&peak(b)),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
    });
    Ok(out)
}

fn costed(entry: &CatalogEntry, request: &RecommendRequest) -> Recommendation {
    let (weights_bytes, weights_estimated) = entry.weights_bytes();
    let projector = if request.with_projector { entry.projector.as_ref() } else { None };
    let projector_bytes = projector.and_then(|p| p.size).unwrap_or(0);
    let planned = plan_shape(&entry.shape, weights_bytes.saturating_add(projector_bytes), request.budget_bytes, request.context_length);
    let download_bytes = match projector {
        Some(p) => entry.file.size.zip(p.size).map(|(a, b)| a.saturating_add(b)),
        None => entry.file.size,
    };
    let mib = |b: u64| b.div_ceil(1 << 20);
    let reason = if request.with_projector && entry.projector.is_none() {
        Some("the model has no vision projector".to_string())
    } else if request.with_projector && projector_bytes == 0 {
        Some("the projector's size is not known, so image input cannot be planned".to_string())
    } else if u64::from(request.context_length) > entry.shape.context_length {
        Some(format!("the model was trained for at most {} tokens", entry.shape.context_length))
    } else {
        match &planned {
            Err(e) => Some(format!("cannot be planned: {e}")),
            Ok(plan) if !plan.fits => Some(format!(
                "needs {} MiB at {} tokens even with a q4_0 KV cache; the budget is {} MiB (5 % kept free)",
                mib(plan.predicted_peak_bytes),
                request.context_length,
                mib(request.budget_bytes)
            )),
            Ok(_) => None,
        }
    };
    let fits = reason.is_none();
    let plan = planned.ok().map(|plan| MemoryPlan { fits, ..plan });
    Recommendation { id: entry.id.clone(), fits, plan, weights_bytes, weights_estimated, projector_bytes, download_bytes, reason }
}

#[cfg(test)]
mod tests {
    use super::super::Catalog;
    use super::*;

    fn request(gib: f64, context_length: u32) -> RecommendRequest {
        RecommendRequest { budget_bytes: (gib * (1u64 << 30) as f64) as u64, context_length, with_projector: false }
    }

    #[test]
    fn a_bigger_budget_never_fits_fewer_models_and_the_largest_fit_leads() {
        let catalog = Catalog::builtin();
        let mut last = 0;
        for gib in [0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0] {
            let recs = catalog.recommend(&request(gib, 4096)).unwrap();
            assert_eq!(recs.len(), catalog.entries().len());
            let fitting: Vec<_> = recs.iter().take_while(|r| r.fits).collect();
            assert!(recs[fitting.len()..].iter().all(|r| !r.fits && r.reason.is_some()), "{gib} GiB: fits come first");
            assert!(fitting.windows(2).all(|w| w[0].weights_bytes >= w[1].weights_bytes));
            for r in &fitting {
                assert!(r.plan.as_ref().unwrap().predicted_peak_bytes as f64 <= request(gib, 4096).budget_bytes as f64 * 0.95, "{r:?}");
            }
            assert!(fitting.len() >= last, "{gib} GiB fits {} models, a smaller budget fitted {last}", fitting.len());
            last = fitting.len();
        }
        assert_eq!(last, catalog.entries().len(), "8 GiB fits every catalog model at 4096 tokens");
        assert!(catalog.recommend(&request(0.25, 4096)).unwrap().iter().all(|r| !r.fits));
    }

    #[test]
    fn a_longer_context_costs_more_and_beyond_training_does_not_fit() {
        let catalog = Catalog::builtin();
        let at = |ctx| catalog.recommend(&request(64.0, ctx)).unwrap();
        let (short, long) = (at(2048), at(32768));
        for s in &short {
            let l = long.iter().find(|l| l.id == s.id).unwrap();
            let peak = |r: &Recommendation| r.plan.as_ref().unwrap().predicted_peak_bytes;
            assert!(peak(l) > peak(s), "{}", s.id);
        }
        let too_long = at(1 << 30);
        assert!(too_long.iter().all(|r| !r.fits && r.reason.as_deref().unwrap().contains("trained")));
    }

    #[test]
    fn images_count_the_projector_and_rule_out_text_only_models() {
        let mut catalog = Catalog::builtin();
        // An app's own entry whose projector size it knows.
        let mut mine = catalog.get("gemma-3-4b-it-q4_k_m").unwrap().clone();
        mine.id = "my-gemma-3-4b".into();
        mine.projector.as_mut().unwrap().size = Some(800 << 20);
        catalog.add(mine).unwrap();
        let text = catalog.recommend(&request(16.0, 4096)).unwrap();
        let vision = catalog.recommend(&RecommendRequest { with_projector: true, ..request(16.0, 4096) }).unwrap();
        for v in &vision {
            let entry = catalog.get(&v.id).unwrap();
            let t = text.iter().find(|t| t.id == v.id).unwrap();
            match (&entry.projector, entry.projector.as_ref().and_then(|p| p.size)) {
                (_, Some(size)) => {
                    assert!(v.fits, "{v:?}");
                    assert_eq!(v.projector_bytes, size);
                    let peak = |r: &Recommendation| r.plan.as_ref().unwrap().predicted_peak_bytes;
                    assert_eq!(peak(v), peak(t) + size);
                }
                (Some(_), None) => assert!(v.reason.as_deref().unwrap().contains("size is not known"), "{v:?}"),
                (None, _) => assert!(v.reason.as_deref().unwrap().contains("no vision projector"), "{v:?}"),
            }
        }
        assert_eq!(vision.iter().filter(|v| v.fits).count(), 1);
        assert_eq!(vision[0].id, "my-gemma-3-4b");
    }

    #[test]
    fn an_entry_beyond_the_planner_does_not_break_the_others() {
        let mut catalog = Catalog::builtin();
        let mut huge = catalog.entries()[0].clone();
        huge.id = "huge".into();
        (huge.shape.layers, huge.shape.kv_heads, huge.shape.heads, huge.shape.head_dim) = (512, 4096, 4096, 16384);
        huge.shape.context_length = u64::from(u32::MAX);
        catalog.add(huge).unwrap();
        let recs = catalog.recommend(&request(4.0, u32::MAX)).unwrap();
        let huge = recs.iter().find(|r| r.id == "huge").unwrap();
        assert!(!huge.fits && huge.plan.is_none() && huge.reason.as_deref().unwrap().contains("cannot be planned"), "{huge:?}");
        assert_eq!(recs.last().unwrap().id, "huge", "an unplannable entry sorts last");
        let fine = catalog.recommend(&request(4.0, 4096)).unwrap();
        assert!(fine.iter().filter(|r| r.id != "huge").all(|r| r.plan.is_some()));
    }

    #[test]
    fn nonsense_requests_are_refused() {
        let catalog = Catalog::builtin();
        assert!(catalog.recommend(&request(0.0, 4096)).is_err());
        assert!(catalog.recommend(&request(4.0, 0)).is_err());
    }
}
