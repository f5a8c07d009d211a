//! The shell lines `remediate sim` prints so that `eval` points the runner at the simulated tenant:
//! the tenant, one credential form (an app secret, or one of the managed identity endpoints), and
//! the three base URLs. One place for them, so that every form agrees on the rest.

use super::{Simulator, server};

/// What the `MSI_ENDPOINT` forms unset first: every credential the runner would take before them.
const UNSET_BEFORE_MSI: &str = "unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH AZURE_FEDERATED_TOKEN_FILE IDENTITY_ENDPOINT IDENTITY_HEADER IMDS_ENDPOINT\n";

impl Simulator {
    /// The lines `remediate sim` prints so that `eval` points the runner here.
    pub fn environment_lines(&self) -> String {
        let app = self.app();
        self.tenant_lines(&format!(
            "export AZURE_CLIENT_ID={}\nexport AZURE_CLIENT_SECRET={}\n",
            app.client_id, app.client_secret
        ))
    }

    /// The lines that point the runner at this tenant's managed identity endpoints instead of a
    /// secret: App Service's (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) and, for
    /// `--credential managed-identity` without those, the instance metadata service's host.
    pub fn managed_identity_lines(&self) -> String {
        let (url, header) = (self.url(), &self.app().identity_header);
        self.tenant_lines(&format!(
            "export IDENTITY_ENDPOINT={url}{}\nexport IDENTITY_HEADER={header}\nexport AZURE_POD_IDENTITY_AUTHORITY_HOST={url}\n",
            server::APP_SERVICE_PATH
        ))
    }

    /// The lines for Azure Machine Learning's endpoint (`MSI_ENDPOINT` and `MSI_SECRET`, the
    /// secret being App Service's header), after unsetting every credential the runner takes first.
    pub fn machine_learning_lines(&self) -> String {
        let (url, secret) = (self.url(), &self.app().identity_header);
        self.tenant_lines(&format!(
            "{UNSET_BEFORE_MSI}export MSI_ENDPOINT={url}{}\nexport MSI_SECRET={secret}\n",
            server::MACHINE_LEARNING_PATH
        ))
    }

    /// The lines for Cloud Shell's endpoint (`MSI_ENDPOINT` alone), after unsetting every
    /// credential the runner takes first.
    pub fn cloud_shell_lines(&self) -> String {
        let url = self.url();
        self.tenant_lines(&format!(
            "{UNSET_BEFORE_MSI}unset MSI_SECRET\nexport MSI_ENDPOINT={url}{}\n",
            server::CLOUD_SHELL_PATH
        ))
    }

    /// The lines for Service Fabric's endpoint (HTTPS on its second port, `IDENTITY_HEADER` being
    /// App Service's header, `IDENTITY_SERVER_THUMBPRINT` its certificate's), after unsetting every
    /// credential the runner takes first and `AZURE_CLIENT_ID` (a client id picks no identity
    /// there); `None` unless `SimConfig::service_fabric` started the endpoint.
    pub fn service_fabric_lines(&self) -> Option<String> {
        let (endpoint, thumbprint) = self.service_fabric_endpoint()?;
        Some(self.tenant_lines(&format!(
            "unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH AZURE_FEDERATED_TOKEN_FILE IMDS_ENDPOINT MSI_ENDPOINT MSI_SECRET\nexport IDENTITY_ENDPOINT={endpoint}\nexport IDENTITY_HEADER={}\nexport IDENTITY_SERVER_THUMBPRINT={thumbprint}\n",
            self.app().identity_header
        )))
    }

    /// The tenant, then `credential`'s lines, then the three base URLs: every form of the lines.
    fn tenant_lines(&self, credential: &str) -> String {
        let url = self.url();
        format!(
            "export AZURE_TENANT_ID={}\n{credential}export REMEDIATE_LOGIN_URL={url}\nexport REMEDIATE_GRAPH_URL={url}\nexport REMEDIATE_EXCHANGE_URL={url}\n",
            self.app().tenant_id
        )
    }
}
