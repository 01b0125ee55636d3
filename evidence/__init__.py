"""The auditor's pack: plan, approvals, outcomes and the audit chain, reconciled."""
