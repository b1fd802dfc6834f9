//! Roles in a team (the original's permission groups) and what each may do:
//! a leaf module that authentication, people and teams all read.

use crate::text_enum::text_enum;

text_enum!(
    /// A member's role in a team: the original's permission groups. `admin`,
    /// `member` and `viewer` are the names the first releases stored; they
    /// still read (as team and chatbot admin, and chat viewer).
    pub enum Role {
        /// Everything, including the team's members.
        Owner = "owner",
        /// Members, providers, API keys, prices.
        TeamAdmin = "team_admin",
        /// Chatbots, versions, channels, events, sessions' tags and ends.
        ChatbotAdmin = "chatbot_admin",
        /// Reads chatbots and sessions; changes nothing.
        ChatViewer = "chat_viewer",
        Admin = "admin",
        Member = "member",
        Viewer = "viewer",
    }
);

/// What a role may do; every console page and action names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See chatbots, sessions, transcripts, participants and usage.
    Read,
    /// Build and deploy chatbots; tag and end sessions.
    ManageChatbots,
    /// Members, API keys, providers and prices.
    ManageTeam,
}

impl Role {
    /// The roles a member can be given today (the legacy names are not offered).
    pub const ASSIGNABLE: &'static [Role] = &[
        Role::Owner,
        Role::TeamAdmin,
        Role::ChatbotAdmin,
        Role::ChatViewer,
    ];

    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (_, Permission::Read)
                | (Role::Owner | Role::Admin, _)
                | (Role::TeamAdmin, Permission::ManageTeam)
                | (Role::ChatbotAdmin, Permission::ManageChatbots)
        )
    }

    /// The role's name as people read it.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::TeamAdmin => "Team admin",
            Role::ChatbotAdmin => "Chatbot admin",
            Role::ChatViewer => "Chat viewer",
            Role::Admin => "Admin (team and chatbots)",
            Role::Member | Role::Viewer => "Chat viewer (legacy)",
        }
    }
}
