# frozen_string_literal: true

# The few Chatwoot records RoomChannel reads, held in memory instead of PostgreSQL: users (id, pubsub_token) and
# their account memberships (Chatwoot's `account_users`: role, availability, auto_offline). The lookups raise
# `RecordNotFound` where ActiveRecord's `find_by!` / `find` would, so the channel fails the way Chatwoot's does.
module CableTestkit
  # ActiveRecord::RecordNotFound's stand-in (no ActiveRecord here).
  class RecordNotFound < StandardError; end

  Membership = Struct.new(:account_id, :role, :availability, :auto_offline, keyword_init: true)

  # A Chatwoot user as RoomChannel sees it. `accounts` is keyed by account id.
  User = Struct.new(:id, :pubsub_token, :memberships, keyword_init: true) do
    # `@current_user.accounts.find(params[:account_id])`: the account among the user's memberships, by id.
    def find_account(raw_id)
      id = Records.cast_id(raw_id)
      raise RecordNotFound, "Couldn't find Account without an ID" if raw_id.nil? || raw_id == ""

      membership = memberships[id] if id
      raise RecordNotFound, "Couldn't find Account with 'id'=#{raw_id}" unless membership

      Account.new(id: id)
    end
  end

  Account = Struct.new(:id, keyword_init: true)

  # The user table, shared by the puma threads (control API) and ActionCable's worker pool.
  module Records
    @mutex = Mutex.new
    @users = {}

    class << self
      # ActiveModel's integer cast as used for `id` columns: integers as they are, numeric strings by `to_i`
      # ("12abc" is 12), anything else nil (which matches no row).
      def cast_id(value)
        case value
        when Integer then value
        when Float then value.to_i
        when String then value.match?(/\A\s*[+-]?\d/) ? value.to_i : nil
        end
      end

      # Inserts or replaces a user; `accounts` is a list of { id, role, availability, auto_offline }.
      def upsert_user(id:, pubsub_token:, accounts: [])
        memberships = accounts.to_h do |account|
          account_id = Integer(account.fetch('id'))
          [account_id, Membership.new(
            account_id: account_id,
            role: account.fetch('role', 'agent'),
            availability: account.fetch('availability', 'online'),
            auto_offline: account.fetch('auto_offline', true)
          )]
        end
        user = User.new(id: Integer(id), pubsub_token: String(pubsub_token), memberships: memberships.freeze)
        @mutex.synchronize { @users[user.id] = user }
        user
      end

      def delete_user(id)
        @mutex.synchronize { !@users.delete(Integer(id)).nil? }
      end

      # `User.find_by!(pubsub_token: token, id: user_id)`.
      def find_user_by_token!(token, raw_id)
        id = cast_id(raw_id)
        user = @mutex.synchronize { @users[id] } if id
        return user if user && !token.nil? && user.pubsub_token == token.to_s

        raise RecordNotFound, "Couldn't find User"
      end

      # Members of an account (OnlineStatusTracker reads `account.account_users`).
      def memberships_of(account_id)
        @mutex.synchronize { @users.values.filter_map { |user| user.memberships[account_id] && [user.id, user.memberships[account_id]] } }
      end

      def users
        @mutex.synchronize { @users.values }
      end
    end
  end
end
