//! Every operation we implement exists in the upstream contract with the same
//! method, path and operationId.

use chatstudio_testkit::contract::{contract, operations};
use chatstudio_testkit::{Backend, TestApp};

#[test]
fn our_operations_are_the_contracts() {
    let ours = serde_json::to_value(api::openapi::document()).unwrap();
    let theirs = operations(contract());
    let ours = operations(&ours);
    assert!(!ours.is_empty());
    for op in ours
        .iter()
        .filter(|(_, _, id)| !api::openapi::EXTENSIONS.contains(&id.as_str()))
    {
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

/// The OpenAPI document as served: any change to the API's contract shows in
/// review as a change to `snapshots/it__contract__openapi_document.snap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document() {
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let r = app.get_public("/api/schema/").await;
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    app.finish().await;
    insta::assert_json_snapshot!(doc, {
        // Where the app happened to listen, if the document names it.
        ".servers[].url" => "[server url]",
    });
}
