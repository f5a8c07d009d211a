//! The directory beyond its users: groups whose direct members are users or other groups (so that
//! transitive membership is real, as Conditional Access evaluates it), and directory role
//! assignments (a role template id held by a user or by a role-assignable group).
//!
//! Everything here is empty unless `--smtp-blockers` seeds it, so a tenant of a million mailboxes
//! pays nothing for it. Memberships live in two ordered sets (group → member for listing a
//! group's members page by page, member → group for walking up from a user) instead of a list on
//! each user.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Value, json};
use uuid::Uuid;

/// A directory object that can be a group member or a role holder: a user or a group, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    User(u32),
    Group(u32),
}

/// Global Administrator's role template id ("Microsoft Entra built-in roles", Template ID column).
pub(crate) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Exchange Administrator's role template id (same table).
pub(crate) const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

/// A security group, with the properties Graph's group resource has that matter here.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: String,
    /// `isAssignableToRole`: only such a group can hold a directory role.
    pub assignable_to_role: bool,
}

impl Group {
    /// The v1.0 `group` resource as Graph lists it.
    pub fn graph_json(&self) -> Value {
        let nickname: String = self.display_name.chars().filter(char::is_ascii_alphanumeric).collect();
        json!({
            "id": self.id.to_string(),
            "deletedDateTime": null,
            "classification": null,
            "createdDateTime": "2025-03-04T09:12:44Z",
            "creationOptions": [],
            "description": self.description,
            "displayName": self.display_name,
            "expirationDateTime": null,
            "groupTypes": [],
            "isAssignableToRole": if self.assignable_to_role { Value::Bool(true) } else { Value::Null },
            "mail": null,
            "mailEnabled": false,
            "mailNickname": nickname,
            "membershipRule": null,
            "membershipRuleProcessingState": null,
            "onPremisesSyncEnabled": null,
            "proxyAddresses": [],
            "renewedDateTime": "2025-03-04T09:12:44Z",
            "securityEnabled": true,
            "securityIdentifier": format!("S-1-12-1-{}", self.id.as_u128() as u32),
            "visibility": null,
        })
    }
}

/// An active directory role assignment at the tenant's scope (`directoryScopeId` "/").
#[derive(Clone, Debug)]
pub struct RoleAssignment {
    pub id: String,
    /// For a built-in role, its template id (what Conditional Access `includeRoles` names).
    pub role_definition_id: &'static str,
    pub principal: Member,
}

#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub groups: Vec<Group>,
    /// (group, direct member).
    members: BTreeSet<(u32, Member)>,
    /// (direct member, group): the same memberships, seen from below.
    member_of: BTreeSet<(Member, u32)>,
    pub role_assignments: Vec<RoleAssignment>,
}

impl Directory {
    pub fn add_group(&mut self, group: Group) -> u32 {
        self.groups.push(group);
        (self.groups.len() - 1) as u32
    }

    /// A group by its object id (any letter case).
    pub fn find_group(&self, id: &str) -> Option<u32> {
        let id = Uuid::parse_str(id).ok()?;
        self.groups.iter().position(|g| g.id == id).map(|i| i as u32)
    }

    /// Groups whose display name equals `name`, ignoring letter case as the directory does.
    pub fn groups_named(&self, name: &str) -> Vec<u32> {
        let name = name.to_lowercase();
        (0..self.groups.len() as u32).filter(|&g| self.groups[g as usize].display_name.to_lowercase() == name).collect()
    }

    /// Adds a direct membership; false when it was already there.
    pub fn add_member(&mut self, group: u32, member: Member) -> bool {
        self.member_of.insert((member, group));
        self.members.insert((group, member))
    }

    /// Removes a direct membership; false when there was none.
    pub fn remove_member(&mut self, group: u32, member: Member) -> bool {
        self.member_of.remove(&(member, group));
        self.members.remove(&(group, member))
    }

    pub fn direct_members(&self, group: u32) -> impl Iterator<Item = Member> + '_ {
        let first = (group, Member::User(0));
        self.members.range(first..).take_while(move |(g, _)| *g == group).map(|(_, m)| *m)
    }

    /// Every member, direct or through nested groups, once each (nested groups included, as
    /// `transitiveMembers` lists them), in a stable order.
    pub fn transitive_members(&self, group: u32) -> Vec<Member> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([group]);
        let mut visited = BTreeSet::from([group]);
        while let Some(current) = queue.pop_front() {
            for member in self.direct_members(current) {
                seen.insert(member);
                if let Member::Group(nested) = member
                    && visited.insert(nested)
                {
                    queue.push_back(nested);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Every group `member` belongs to, directly or through nested groups.
    pub fn groups_of(&self, member: Member) -> BTreeSet<u32> {
        let mut found = BTreeSet::new();
        let mut queue = VecDeque::from([member]);
        while let Some(current) = queue.pop_front() {
            let first = (current, 0u32);
            for &(_, group) in self.member_of.range(first..).take_while(|(m, _)| *m == current) {
                if found.insert(group) {
                    queue.push_back(Member::Group(group));
                }
            }
        }
        found
    }

    /// The role template ids a user holds, directly or through a (role-assignable) group.
    pub fn roles_of(&self, user: u32) -> BTreeSet<&'static str> {
        let groups = self.groups_of(Member::User(user));
        self.role_assignments
            .iter()
            .filter(|a| match a.principal {
                Member::User(u) => u == user,
                Member::Group(g) => groups.contains(&g),
            })
            .map(|a| a.role_definition_id)
            .collect()
    }

    /// Whether there is anything at all (a tenant seeded without blockers has nothing).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.role_assignments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, n: u128) -> Group {
        Group {
            id: Uuid::from_u128(n),
            display_name: name.into(),
            description: String::new(),
            assignable_to_role: false,
        }
    }

    #[test]
    fn membership_is_transitive_both_ways_and_survives_a_cycle() {
        let mut directory = Directory::default();
        let top = directory.add_group(group("Top", 1));
        let middle = directory.add_group(group("Middle", 2));
        let bottom = directory.add_group(group("Bottom", 3));
        assert!(directory.add_member(top, Member::Group(middle)));
        assert!(directory.add_member(middle, Member::Group(bottom)));
        assert!(directory.add_member(bottom, Member::User(7)));
        assert!(!directory.add_member(bottom, Member::User(7)), "already a member");
        assert!(directory.add_member(bottom, Member::Group(top)), "a cycle must not hang anything");
        assert_eq!(directory.groups_of(Member::User(7)), BTreeSet::from([top, middle, bottom]));
        let all = directory.transitive_members(top);
        assert!(all.contains(&Member::User(7)) && all.contains(&Member::Group(bottom)));
        assert_eq!(directory.direct_members(top).collect::<Vec<_>>(), [Member::Group(middle)]);
        assert!(directory.remove_member(bottom, Member::User(7)));
        assert!(directory.groups_of(Member::User(7)).is_empty());
        assert_eq!(directory.groups_named("top"), [top]);
        assert_eq!(directory.find_group(&Uuid::from_u128(2).to_string().to_uppercase()), Some(middle));
    }

    #[test]
    fn roles_come_directly_or_through_a_group() {
        let mut directory = Directory::default();
        let admins = directory.add_group(group("Admins", 1));
        directory.add_member(admins, Member::User(3));
        directory.role_assignments.push(RoleAssignment {
            id: "a".into(),
            role_definition_id: EXCHANGE_ADMINISTRATOR,
            principal: Member::Group(admins),
        });
        directory.role_assignments.push(RoleAssignment {
            id: "b".into(),
            role_definition_id: GLOBAL_ADMINISTRATOR,
            principal: Member::User(4),
        });
        assert_eq!(directory.roles_of(3), BTreeSet::from([EXCHANGE_ADMINISTRATOR]));
        assert_eq!(directory.roles_of(4), BTreeSet::from([GLOBAL_ADMINISTRATOR]));
        assert!(directory.roles_of(5).is_empty());
    }
}
