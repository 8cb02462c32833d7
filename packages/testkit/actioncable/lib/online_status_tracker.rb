# frozen_string_literal: true

# Presence as Chatwoot keeps it in Redis (`lib/online_status_tracker.rb` in chatwoot/chatwoot), in memory: a
# user is present in an account for PRESENCE_DURATION after RoomChannel last touched it; the users listed as
# available are the present ones plus the members with auto_offline false, each with their availability.
module CableTestkit
  module OnlineStatusTracker
    PRESENCE_DURATION = Integer(ENV.fetch('PRESENCE_DURATION', 20))

    @mutex = Mutex.new
    # account id => { "User" | "Contact" => { id (string, as Redis returns members) => unix seconds } }
    @presence = Hash.new { |hash, key| hash[key] = { 'User' => {}, 'Contact' => {} } }

    class << self
      def update_presence(account_id, obj_type, obj_id)
        Faults.redis!('OnlineStatusTracker.update_presence')
        @mutex.synchronize { @presence[account_id][obj_type == 'Contact' ? 'Contact' : 'User'][obj_id.to_s] = Time.now.to_i }
      end

      # { "id" => "online" } for the contacts seen recently (never any here: contacts are not hosted).
      def get_available_contacts(account_id)
        present(account_id, 'Contact').to_h { |id| [id, 'online'] }
      end

      # { "id" => availability } for the users seen recently and the members that never go offline on their own.
      def get_available_users(account_id)
        members = Records.memberships_of(account_id).to_h { |user_id, membership| [user_id.to_s, membership] }
        ids = (present(account_id, 'User') + members.select { |_, m| m.auto_offline == false }.keys).uniq
        ids.to_h { |id| [id, members[id]&.availability || 'offline'] }
      end

      def reset
        @mutex.synchronize { @presence.clear }
      end

      private

      def present(account_id, type)
        since = Time.now.to_i - PRESENCE_DURATION
        @mutex.synchronize do
          seen = @presence[account_id][type]
          seen.delete_if { |_, at| at < since }
          seen.keys
        end
      end
    end
  end
end
