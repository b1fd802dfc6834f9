//! Every operation we implement exists in the upstream contract with the same
//! method, path and operationId.

use chatstudio_testkit::contract::{contract, operations};

#[test]
fn our_operations_are_the_contracts() {
    let ours = serde_json::to_value(api::openapi::document()).unwrap();
    let theirs = operations(contract());
    let ours = operations(&ours);
    assert!(!ours.is_empty());
    for op in &ours {
        assert!(theirs.contains(op), "{op:?} is not in the contract");
    }
    // The implemented set grows with each feature; these must be there now.
    for id in ["experiment_list", "experiment_retrieve"] {
        assert!(
            ours.iter().any(|(_, _, o)| o == id),
            "{id} missing from our document"
        );
    }
}
